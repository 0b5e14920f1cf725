// Entry point of the dashboard page: keeps the page state and redraws charts and panels from it. The page never
// holds the whole latest.json: it keeps the document's summary (pushed by feed.js), one page of groups (a
// bounded number of bars, fetched from /api/devices for the current filter, sort and page, with the histogram of
// a metric over every matching group) and the selected group's records (/api/device).
//
// Two views: the built-in job's (the summary's `builtin`), with its device charts of temperature, humidity and
// battery, fleet views and alerts; and any other query's, where a metric list offers the numeric value columns
// of its output and the bars, the histogram and the selected group's history draw the chosen one, a table shows
// every column of the page's groups, and the header shows the query.

import {
  COLUMN_PREFIX, DeviceCharts, GroupChart, HistogramChart, HistoryChart, SESSION_LENGTH, UDF_SORT_PREFIX, groupWindows,
} from './charts.js';
import { Feed, POLL_MS, coalesced, devicesUrl, getJson } from './feed.js';
import { fmtAge, fmtInt, fmtTime, fmtWindowKind, isNumericColumn, isNumericUdf, isSessions, parseTime } from './format.js';
import {
  el, renderAge, renderBanner, renderDevicePicker, renderDeviceUdfs, renderExtraOptions, renderFleet, renderGroupTable,
  renderHealth, renderQuery, staleness,
} from './panels.js';

const $ = (sel) => document.querySelector(sel);

const state = {
  /** The document without its records: counters, fleet views, window kind, UDF columns, device counts. */
  summary: null,
  /** Problem reported by the server about latest.json (the data shown is then the last good one). */
  serverError: null,
  /** How updates arrive: connecting | live | polling | offline. */
  mode: 'connecting',
  filter: '',
  sort: 'id',
  /** The other end of the sort: bottom N instead of top N. */
  reverse: false,
  offset: 0,
  pageSize: Number($('#page-size').value),
  /** The last /api/devices answer: {total, matched, offset, limit, rows, labels, histogram}. */
  page: null,
  /** The selected group's label (for the built-in job, the device id). */
  selected: null,
  /** The selected group's records in latest.json (newest and last final window). */
  selectedRecords: [],
  /** The texts of the selected group's key values, once /api/device has named them (what /api/history takes). */
  selectedKey: null,
  /** The numeric column drawn for a query that is not the built-in one ('' until its columns are known). */
  metric: '',
  historyLimit: Number($('#history-limit').value),
  /** The metric the history draws (a numeric UDF column, or the session length), or '' for the built-in
   *  measures. */
  historyMetric: '',
  /** The rows the history chart shows, kept to redraw them for another metric without fetching again. */
  historyRows: [],
  /** What the history chart currently shows, to refetch only when it would change. */
  historyKey: null,
  historySeq: 0,
};

const deviceCharts = new DeviceCharts({
  temperature: $('#chart-temperature'),
  humidity: $('#chart-humidity'),
  battery: $('#chart-battery'),
  sizer: $('#device-charts'),
  onSelect: select,
});
const groupChart = new GroupChart({ canvas: $('#chart-metric'), sizer: $('#device-charts'), onSelect: select });
const histogramChart = new HistogramChart($('#chart-histogram'));
const historyChart = new HistoryChart($('#chart-history'));

/** Whether the page draws the built-in job's views (also before the first summary). */
function seedView() {
  return state.summary?.builtin !== false;
}

/** The output columns of the document. */
function columns() {
  return state.summary?.columns ?? [];
}

/** What a group is called: a device for the built-in job. */
function noun(n = 1) {
  const word = seedView() ? 'device' : 'group';
  return n === 1 ? word : `${word}s`;
}

// ---- rendering -------------------------------------------------------------------------------------------

function render() {
  renderPanels();
  renderDevices();
  renderSelected();
}

/** Everything drawn from the summary. */
function renderPanels() {
  const s = state.summary;
  const seed = seedView();
  document.body.dataset.view = seed ? 'seed' : 'columns';
  renderQuery($('#query'), seed ? null : s?.query);
  for (const f of document.querySelectorAll('#device-charts figure')) f.hidden = (f.dataset.view === 'seed') !== seed;
  $('#group-table').hidden = seed;
  $('#groups-noun').textContent = seed ? 'Devices' : 'Groups';
  const keys = columns().filter((c) => c.role === 'key').map((c) => c.name);
  $('#groups-sub').textContent = seed ? 'newest window' : `newest window · by ${keys.join(' / ')}`;
  $('#device-filter').placeholder = `Filter ${noun(2)}…`;
  $('#device-sort option[value="id"]').textContent = seed ? 'by device' : 'by key';
  renderMetricLists(s);
  renderHealth($('#health'), s);
  renderFleet($('#fleet'), s, select);
  $('#watermark').textContent = s?.watermark ? fmtTime(parseTime(s.watermark)) : '–';
  $('#watermark').title = s?.watermark ?? '';
  $('#window-kind').textContent = s ? fmtWindowKind(s.window) : '';
  $('#window-kind').title = s && !s.window
    ? 'latest.json does not state the window kind (a job older than window kinds): tumbling windows'
    : 'The job\'s window kind';
  renderStatus();
}

const METRIC_TEXT = {
  temperature: 'average temperature (°C)',
  humidity: 'average humidity (%)',
  battery: 'minimum battery (%)',
  [SESSION_LENGTH]: 'session length (s)',
};

/** The group charts, pager and picker from the current page of groups; the histogram of the metric. */
function renderDevices() {
  const s = state.summary;
  const p = state.page;
  const rows = p?.rows ?? [];
  const labels = p?.labels ?? rows.map((r) => r.device_id);
  if (seedView()) {
    deviceCharts.update(rows, state.selected, s?.udfs ?? [], isSessions(s));
  } else {
    groupChart.update(rows, labels, state.metric, state.selected, isSessions(s));
    $('#metric-caption').textContent = state.metric || 'no numeric column in this query';
    renderGroupTable($('#group-table'), columns(), rows, labels, state.selected, select);
  }
  const total = s?.devices ?? p?.total ?? 0;
  const live = s?.live ?? 0;
  $('#device-count').textContent = state.filter.trim() && p
    ? `${fmtInt(p.matched)} of ${fmtInt(total)} ${noun(2)} match`
    : `${fmtInt(total)} ${noun(total)} · ${fmtInt(live)} live, ${fmtInt(total - live)} final`;
  $('#devices-empty').hidden = rows.length > 0;
  $('#devices-empty').textContent = total ? `No ${noun()} matches the filter.` : 'No windows yet.';
  const matched = p?.matched ?? 0;
  $('#page-info').textContent = rows.length
    ? `${fmtInt(p.offset + 1)}–${fmtInt(p.offset + rows.length)} of ${fmtInt(matched)}`
    : `0 of ${fmtInt(matched)}`;
  $('#page-prev').disabled = !p || p.offset === 0;
  $('#page-next').disabled = !p || p.offset + rows.length >= matched;
  const ids = [...labels].sort();
  if (state.selected && !ids.includes(state.selected)) ids.push(state.selected);
  renderDevicePicker($('#device-select'), ids, state.selected);
  const h = p?.histogram;
  const metric = h?.metric ?? (seedView() ? 'temperature' : '');
  const what = METRIC_TEXT[metric] ?? metric.replace(UDF_SORT_PREFIX, '').replace(COLUMN_PREFIX, '');
  $('#histogram-title').textContent = h
    ? `Distribution of ${what} over ${fmtInt(h.count)} ${noun(h.count)}${h.missing ? ` (${fmtInt(h.missing)} without a value)` : ''}`
    : 'Distribution';
  histogramChart.update(h, what, noun());
}

/** The columns the selected group's table lists: the UDF columns for the built-in job, every value column of
 *  any other query. */
function selectedColumns() {
  const s = state.summary;
  if (seedView()) return s?.udfs ?? [];
  return columns().filter((c) => c.role === 'value').map((c) => ({ name: c.name, type: c.type }));
}

/** The selected group's columns table and history. */
function renderSelected() {
  const s = state.summary;
  const { newest, lastFinal } = groupWindows(state.selectedRecords);
  const udfs = $('#device-udfs');
  const caption = seedView() ? 'UDF columns' : 'Columns';
  renderDeviceUdfs(udfs, state.selected ? selectedColumns() : [], newest, lastFinal, isSessions(s), caption);
  // Which group the table shows, once its records are in.
  udfs.dataset.device = udfs.hidden ? '' : state.selected;
  refreshHistory();
}

/** The sort list and the history's metric list gain what the document offers: the session length when its
 *  windows are sessions, then its numeric UDF columns. Any other query's document offers its numeric value
 *  columns instead, in the metric list (what every chart draws) and the sort list; the built-in sorts leave. A
 *  choice the document no longer offers falls back to the default. */
function renderMetricLists(summary) {
  const seed = seedView();
  const session = isSessions(summary);
  const numeric = seed
    ? (summary?.udfs ?? []).filter(isNumericUdf).map((u) => u.name)
    : columns().filter(isNumericColumn).map((c) => c.name);
  const prefix = seed ? UDF_SORT_PREFIX : COLUMN_PREFIX;
  const sorts = [
    ...(session ? [{ value: SESSION_LENGTH, text: 'longest session first' }] : []),
    ...numeric.map((name) => ({ value: `${prefix}${name}`, text: `highest ${name} first` })),
  ];
  const metrics = [
    ...(session ? [{ value: SESSION_LENGTH, text: 'session length' }] : []),
    ...numeric.map((name) => ({ value: name, text: name })),
  ];
  for (const o of document.querySelectorAll('#device-sort option[data-seed]')) {
    o.hidden = !seed;
    o.disabled = !seed;
  }
  renderExtraOptions($('#device-sort'), sorts);
  renderExtraOptions($('#history-metric'), seed ? metrics : [], true);
  const metricList = $('#metric');
  const offeredColumns = seed ? [] : numeric;
  if ([...metricList.options].map((o) => o.value).join('\n') !== offeredColumns.join('\n')) {
    metricList.replaceChildren(...offeredColumns.map((name) => el('option', name, { value: name })));
  }
  $('#metric-control').hidden = seed;
  if (!state.summary) return;
  const offered = (select, value) => [...select.options].some((o) => o.value === value && !o.disabled);
  if (!offered($('#device-sort'), state.sort)) {
    state.sort = 'id';
    state.offset = 0;
    refreshView();
  }
  if (!seed && !numeric.includes(state.metric)) {
    state.metric = numeric[0] ?? '';
    updateUrl();
    refreshView();
    drawHistory();
  }
  metricList.value = state.metric;
  if (state.historyMetric && !offered($('#history-metric'), state.historyMetric)) {
    state.historyMetric = '';
    updateUrl();
    drawHistory();
  }
  $('#device-sort').value = state.sort;
  $('#history-metric').value = state.historyMetric;
}

function renderStatus() {
  const conn = $('#connection');
  conn.dataset.state = state.mode;
  conn.textContent = {
    connecting: 'connecting…',
    live: 'live',
    polling: `polling every ${POLL_MS / 1000} s`,
    offline: 'dashboard unreachable',
  }[state.mode];
  conn.title = {
    connecting: 'Opening the update stream',
    live: 'Updates are pushed by the server (Server-Sent Events)',
    polling: 'The update stream is unavailable; fetching /api/summary periodically instead',
    offline: 'Neither /events nor /api/summary answers; retrying',
  }[state.mode];
  const s = state.summary;
  let message = null;
  if (state.serverError) {
    message = s
      ? `latest.json problem: ${state.serverError} — showing the last good data (written ${fmtTime(s.updated_at * 1000)}).`
      : `Waiting for data: ${state.serverError}`;
  } else if (state.mode === 'offline') {
    message = 'The dashboard server does not answer; the data shown may be out of date.';
  } else if (s && Date.now() / 1000 - s.updated_at > staleness.seconds) {
    message = `No update from the pipeline for ${fmtAge(s.updated_at)}: is the dataflow running and writing to this --data folder?`;
  }
  renderBanner($('#banner'), message);
}

// ---- what the page shows, fetched on demand ------------------------------------------------------------------

/** Fetches the current page of devices (again after it when asked meanwhile), then redraws the devices. A page
 *  past the end (devices went away, a narrower filter) moves back to the last page. */
const refreshView = coalesced(async () => {
  try {
    const query = { filter: state.filter, sort: state.sort, reverse: state.reverse, offset: state.offset, limit: state.pageSize };
    // Any other query's histogram draws the chosen column, whatever the order.
    if (!seedView() && state.metric) query.metric = `${COLUMN_PREFIX}${state.metric}`;
    const r = await getJson(devicesUrl(query));
    if (!r.ok) {
      state.page = null;
      renderDevices();
      return;
    }
    const p = r.body;
    if (p.rows.length === 0 && p.offset > 0 && p.matched > 0) {
      state.offset = Math.floor((p.matched - 1) / state.pageSize) * state.pageSize;
      refreshView();
      return;
    }
    state.page = p;
    renderDevices();
  } catch {
    // Unreachable: the feed reports it; the last page stays on screen.
  }
});

/** Fetches the selected group's records (and the texts of its key values), then redraws its columns table and
 *  history. */
const refreshSelected = coalesced(async () => {
  const id = state.selected;
  if (!id) {
    state.selectedRecords = [];
    state.selectedKey = null;
  } else {
    try {
      const r = await getJson(`/api/device?id=${encodeURIComponent(id)}`);
      if (state.selected !== id) return;
      if (r.ok) {
        state.selectedRecords = r.body.records;
        state.selectedKey = r.body.key ?? state.selectedKey;
      }
    } catch {
      return;
    }
  }
  renderSelected();
});

// ---- device selection and history -----------------------------------------------------------------------

/** Keeps the selection in the URL: `#device=...` (`#group=...` for any other query), with `&metric=...` when
 *  the history draws a picked metric. */
function updateUrl() {
  let url = location.pathname + location.search;
  const metric = seedView() ? state.historyMetric : state.metric;
  if (state.selected) {
    url = `#${seedView() ? 'device' : 'group'}=${encodeURIComponent(state.selected)}`;
    if (metric) url += `&metric=${encodeURIComponent(metric)}`;
  }
  history.replaceState(null, '', url);
}

function select(label) {
  state.selected = label || null;
  state.selectedRecords = [];
  state.selectedKey = null;
  updateUrl();
  renderDevices();
  // The previous group's values must not stay on screen while this one's records are fetched.
  renderDeviceUdfs($('#device-udfs'), [], undefined, undefined);
  $('#device-udfs').dataset.device = '';
  refreshSelected();
}

function newestFinalEnd() {
  let end = '';
  for (const r of state.selectedRecords) {
    if (r.final && r.window_end > end) end = r.window_end;
  }
  return end;
}

async function refreshHistory() {
  const id = state.selected;
  $('#history-device').textContent = id ?? '';
  $('#history-panel').dataset.selected = id ? 'yes' : 'no';
  if (!id) {
    state.historyKey = null;
    showHistory([], 'Click a bar or an alert, or pick a device, to see its final windows.', '');
    return;
  }
  // Any other query's group is asked for by the texts of its key values, which /api/device names.
  const seed = seedView();
  if (!seed && !state.selectedKey) {
    state.historyKey = null;
    showHistory([], `Waiting for ${id} in latest.json…`, '');
    return;
  }
  // New final windows of this group change the key, so the chart follows the pipeline.
  const key = JSON.stringify([id, state.historyLimit, newestFinalEnd(), state.selectedKey]);
  if (key === state.historyKey) return;
  state.historyKey = key;
  const seq = ++state.historySeq;
  const group = seed
    ? `device=${encodeURIComponent(id)}`
    : state.selectedKey.map((k) => `key=${encodeURIComponent(k)}`).join('&');
  const url = `/api/history?${group}&limit=${state.historyLimit}`;
  try {
    const res = await fetch(url, { cache: 'no-store' });
    const body = await res.json();
    if (seq !== state.historySeq) return;
    if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
    const note = [];
    if (body.rows.length) {
      note.push(`${fmtInt(body.count)} final window${body.count === 1 ? '' : 's'}${body.truncated ? ` (newest ${fmtInt(body.limit)})` : ''}, from ${fmtTime(parseTime(body.rows[0].window_start), true)} to ${fmtTime(parseTime(body.rows.at(-1).window_end))}.`);
    }
    if (body.errors?.length) note.push(`${body.errors.length} history file(s) could not be read: ${body.errors[0]}`);
    showHistory(body.rows, `No final window of this ${noun()} in the Parquet history yet.`, note.join(' '));
  } catch (err) {
    if (seq !== state.historySeq) return;
    state.historyKey = null;
    showHistory([], `History unavailable: ${err.message}`, '');
  }
}

/** Redraws the history's rows for the current metric and window kind, without fetching them again. Any other
 *  query's history draws the chosen column (nothing when it has no numeric column). */
function drawHistory() {
  const seed = seedView();
  const rows = seed || state.metric ? state.historyRows : [];
  historyChart.update(rows, seed ? state.historyMetric : state.metric, isSessions(state.summary), seed);
}

/** Draws `rows`, or shows `emptyText` in place of the chart when there are none. */
function showHistory(rows, emptyText, note) {
  state.historyRows = rows;
  drawHistory();
  $('#history-panel').dataset.empty = rows.length ? 'no' : 'yes';
  $('#history-empty').textContent = emptyText;
  $('#history-note').textContent = note;
}

// ---- data feed -----------------------------------------------------------------------------------------------

const feed = new Feed({
  onSummary(summary) {
    state.summary = summary;
    renderPanels();
    refreshView();
    refreshSelected();
  },
  onDelta(d) {
    state.summary = d.summary;
    renderPanels();
    // Any change may move devices in or out of the page and changes the histogram.
    if (d.changed_total + d.removed_total > 0) refreshView();
    if (!state.selected) return;
    const mine = d.changed?.find((c) => c.label === state.selected);
    if (d.changed === null) {
      refreshSelected();
    } else if (mine || d.removed.includes(state.selected)) {
      state.selectedRecords = mine?.records ?? [];
      if (mine) state.selectedKey = mine.key;
      renderSelected();
    }
  },
  onStatus(s) {
    state.serverError = s.error ?? null;
    if (Number.isFinite(s.stale_after_seconds)) staleness.seconds = s.stale_after_seconds;
    renderStatus();
  },
  onProblem(problem) {
    state.serverError = problem;
    renderStatus();
  },
  onMode(mode) {
    state.mode = mode;
    renderStatus();
  },
});

// ---- controls --------------------------------------------------------------------------------------------

/** A new query of the device list: back to its first page. */
function requery() {
  state.offset = 0;
  refreshView();
}

let filterTimer = null;
$('#device-filter').addEventListener('input', (e) => {
  state.filter = e.target.value;
  clearTimeout(filterTimer);
  filterTimer = setTimeout(requery, 150);
});
$('#device-sort').addEventListener('change', (e) => {
  state.sort = e.target.value;
  requery();
});
$('#device-reverse').addEventListener('change', (e) => {
  state.reverse = e.target.checked;
  requery();
});
$('#page-size').addEventListener('change', (e) => {
  state.pageSize = Number(e.target.value);
  requery();
});
$('#page-prev').addEventListener('click', () => {
  state.offset = Math.max(0, state.offset - state.pageSize);
  refreshView();
});
$('#page-next').addEventListener('click', () => {
  state.offset += state.pageSize;
  refreshView();
});
$('#device-select').addEventListener('change', (e) => select(e.target.value));
$('#history-limit').addEventListener('change', (e) => {
  state.historyLimit = Number(e.target.value);
  refreshHistory();
});
$('#history-metric').addEventListener('change', (e) => {
  state.historyMetric = e.target.value;
  updateUrl();
  drawHistory();
});
$('#metric').addEventListener('change', (e) => {
  state.metric = e.target.value;
  updateUrl();
  renderDevices();
  drawHistory();
  refreshView();
});
$('#history-clear').addEventListener('click', () => select(null));
window.addEventListener('resize', () => renderDevices());
setInterval(() => {
  renderAge($('#health'), state.summary);
  renderStatus();
}, 1000);

const fromHash = new URLSearchParams(location.hash.slice(1));
state.selected = fromHash.get('device') ?? fromHash.get('group') ?? null;
// Kept until the first summary says whether it offers the metric (render then drops an unknown one).
if (fromHash.get('metric')) {
  state.historyMetric = fromHash.get('metric');
  state.metric = fromHash.get('metric');
}

$('#endpoints').append(
  ...['/metrics', '/api/summary', '/api/devices', '/api/health', '/metrics/prometheus'].map((href) => el('a', href, { href })),
);
render();
feed.start();
