// Entry point of the dashboard page: receives latest.json (Server-Sent Events from /events, falling back to
// polling /metrics every 2 s), keeps the page state, and redraws charts and panels from it.

import { DeviceCharts, HistoryChart, SESSION_LENGTH, UDF_SORT_PREFIX, deviceRows, deviceWindows } from './charts.js';
import { fmtAge, fmtInt, fmtTime, fmtWindowKind, isNumericUdf, isSessions, parseTime } from './format.js';
import {
  el, renderAge, renderBanner, renderDevicePicker, renderDeviceUdfs, renderExtraOptions, renderFleet, renderHealth, staleness,
} from './panels.js';

const POLL_MS = 2000;
const $ = (sel) => document.querySelector(sel);

const state = {
  doc: null,
  /** Problem reported by the server about latest.json (the data shown is then the last good one). */
  serverError: null,
  /** How updates arrive: connecting | live | polling | offline. */
  mode: 'connecting',
  filter: '',
  sort: 'id',
  selected: null,
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
const historyChart = new HistoryChart($('#chart-history'));

// ---- rendering -------------------------------------------------------------------------------------------

function render() {
  const doc = state.doc;
  const udfs = doc?.udfs ?? [];
  const sessions = isSessions(doc);
  renderMetricLists(doc);
  const rows = deviceRows(doc, state.filter, state.sort);
  deviceCharts.update(rows, state.selected, udfs, sessions);
  const all = deviceRows(doc, '', 'id');
  const live = all.filter((r) => !r.final).length;
  $('#device-count').textContent = state.filter
    ? `showing ${fmtInt(rows.length)} of ${fmtInt(all.length)} devices`
    : `${fmtInt(all.length)} device${all.length === 1 ? '' : 's'} · ${fmtInt(live)} live, ${fmtInt(all.length - live)} final`;
  $('#devices-empty').hidden = rows.length > 0;
  $('#devices-empty').textContent = all.length ? 'No device matches the filter.' : 'No windows yet.';
  renderDevicePicker($('#device-select'), all.map((r) => r.device_id), state.selected);
  const { newest, lastFinal } = deviceWindows(doc?.records, state.selected);
  renderDeviceUdfs($('#device-udfs'), state.selected ? udfs : [], newest, lastFinal, sessions);
  renderHealth($('#health'), doc);
  renderFleet($('#fleet'), doc, select);
  $('#watermark').textContent = doc?.watermark ? fmtTime(parseTime(doc.watermark)) : '–';
  $('#watermark').title = doc?.watermark ?? '';
  $('#window-kind').textContent = doc ? fmtWindowKind(doc.window) : '';
  $('#window-kind').title = doc && !doc.window
    ? 'latest.json does not state the window kind (a job older than window kinds): tumbling windows'
    : 'The job\'s window kind';
  renderStatus();
  refreshHistory();
}

/** The sort list and the history's metric list gain what the document offers: the session length when its
 *  windows are sessions, then its numeric UDF columns. A choice the document no longer offers falls back to the
 *  default. */
function renderMetricLists(doc) {
  const session = isSessions(doc);
  const numeric = (doc?.udfs ?? []).filter(isNumericUdf).map((u) => u.name);
  const sorts = [
    ...(session ? [{ value: SESSION_LENGTH, text: 'longest session first' }] : []),
    ...numeric.map((name) => ({ value: `${UDF_SORT_PREFIX}${name}`, text: `highest ${name} first` })),
  ];
  const metrics = [
    ...(session ? [{ value: SESSION_LENGTH, text: 'session length' }] : []),
    ...numeric.map((name) => ({ value: name, text: name })),
  ];
  renderExtraOptions($('#device-sort'), sorts);
  renderExtraOptions($('#history-metric'), metrics, true);
  if (!state.doc) return;
  const offered = (select, value) => [...select.options].some((o) => o.value === value);
  if (!offered($('#device-sort'), state.sort)) state.sort = 'id';
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
    polling: 'The update stream is unavailable; fetching /metrics periodically instead',
    offline: 'Neither /events nor /metrics answers; retrying',
  }[state.mode];
  let message = null;
  if (state.serverError) {
    message = state.doc
      ? `latest.json problem: ${state.serverError} — showing the last good data (written ${fmtTime(state.doc.updated_at * 1000)}).`
      : `Waiting for data: ${state.serverError}`;
  } else if (state.mode === 'offline') {
    message = 'The dashboard server does not answer; the data shown may be out of date.';
  } else if (state.doc && Date.now() / 1000 - state.doc.updated_at > staleness.seconds) {
    message = `No update from the pipeline for ${fmtAge(state.doc.updated_at)}: is the dataflow running and writing to this --data folder?`;
  }
  renderBanner($('#banner'), message);
}

// ---- device selection and history -----------------------------------------------------------------------

/** Keeps the selection in the URL: `#device=...`, with `&metric=...` when the history draws a picked metric. */
function updateUrl() {
  let url = location.pathname + location.search;
  if (state.selected) {
    url = `#device=${encodeURIComponent(state.selected)}`;
    if (state.historyMetric) url += `&metric=${encodeURIComponent(state.historyMetric)}`;
  }
  history.replaceState(null, '', url);
}

function select(deviceId) {
  state.selected = deviceId || null;
  updateUrl();
  render();
}

function newestFinalEnd(deviceId) {
  let end = '';
  for (const r of state.doc?.records ?? []) {
    if (r.device_id === deviceId && r.final && r.window_end > end) end = r.window_end;
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
  // New final windows of this device change the key, so the chart follows the pipeline.
  const key = JSON.stringify([id, state.historyLimit, newestFinalEnd(id)]);
  if (key === state.historyKey) return;
  state.historyKey = key;
  const seq = ++state.historySeq;
  const url = `/api/history?device=${encodeURIComponent(id)}&limit=${state.historyLimit}`;
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
    showHistory(body.rows, 'No final window of this device in the Parquet history yet.', note.join(' '));
  } catch (err) {
    if (seq !== state.historySeq) return;
    state.historyKey = null;
    showHistory([], `History unavailable: ${err.message}`, '');
  }
}

/** Redraws the history's rows for the current metric and window kind, without fetching them again. */
function drawHistory() {
  historyChart.update(state.historyRows, state.historyMetric, isSessions(state.doc));
}

/** Draws `rows`, or shows `emptyText` in place of the chart when there are none. */
function showHistory(rows, emptyText, note) {
  state.historyRows = rows;
  drawHistory();
  $('#history-panel').dataset.empty = rows.length ? 'no' : 'yes';
  $('#history-empty').textContent = emptyText;
  $('#history-note').textContent = note;
}

// ---- data feed: SSE with polling fallback ----------------------------------------------------------------

let pollTimer = null;

function applyDoc(doc) {
  state.doc = doc;
  render();
}

function setMode(mode) {
  if (state.mode !== mode) {
    state.mode = mode;
    renderStatus();
  }
}

async function pollOnce() {
  try {
    const res = await fetch('/metrics', { cache: 'no-store' });
    if (res.ok) {
      state.serverError = res.headers.get('X-Dashboard-Error');
      applyDoc(await res.json());
    } else {
      const body = await res.json().catch(() => ({}));
      state.serverError = body.error ?? `HTTP ${res.status}`;
      renderStatus();
    }
    if (state.mode !== 'live') setMode(pollTimer ? 'polling' : state.mode);
  } catch {
    if (state.mode !== 'live') setMode('offline');
  }
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(pollOnce, POLL_MS);
  setMode('polling');
  pollOnce();
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function connect() {
  if (!('EventSource' in window)) {
    startPolling();
    return;
  }
  const source = new EventSource('/events');
  source.addEventListener('open', () => {
    stopPolling();
    setMode('live');
  });
  source.addEventListener('latest', (e) => applyDoc(JSON.parse(e.data)));
  source.addEventListener('status', (e) => {
    const s = JSON.parse(e.data);
    state.serverError = s.error ?? null;
    if (Number.isFinite(s.stale_after_seconds)) staleness.seconds = s.stale_after_seconds;
    renderStatus();
  });
  // The browser reconnects by itself (unless the server refused the stream); poll meanwhile.
  source.addEventListener('error', () => startPolling());
}

// ---- controls --------------------------------------------------------------------------------------------

$('#device-filter').addEventListener('input', (e) => {
  state.filter = e.target.value;
  render();
});
$('#device-sort').addEventListener('change', (e) => {
  state.sort = e.target.value;
  render();
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
$('#history-clear').addEventListener('click', () => select(null));
window.addEventListener('resize', () => {
  if (state.doc) {
    const rows = deviceRows(state.doc, state.filter, state.sort);
    deviceCharts.update(rows, state.selected, state.doc.udfs ?? [], isSessions(state.doc));
  }
});
setInterval(() => {
  renderAge($('#health'), state.doc);
  renderStatus();
}, 1000);

const fromHash = new URLSearchParams(location.hash.slice(1));
if (fromHash.get('device')) state.selected = fromHash.get('device');
// Kept until the first document says whether it offers the metric (render then drops an unknown one).
if (fromHash.get('metric')) state.historyMetric = fromHash.get('metric');

$('#endpoints').append(
  ...['/metrics', '/api/health', '/metrics/prometheus'].map((href) => el('a', href, { href })),
);
render();
pollOnce();
connect();
