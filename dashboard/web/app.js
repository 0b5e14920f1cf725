// Entry point of the dashboard page: receives latest.json (Server-Sent Events from /events, falling back to
// polling /metrics every 2 s), keeps the page state, and redraws charts and panels from it.

import { DeviceCharts, HistoryChart, deviceRows } from './charts.js';
import { fmtAge, fmtInt, fmtTime, parseTime } from './format.js';
import { el, renderAge, renderBanner, renderDevicePicker, renderFleet, renderHealth, staleness } from './panels.js';

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
  const rows = deviceRows(doc, state.filter, state.sort);
  deviceCharts.update(rows, state.selected);
  const all = deviceRows(doc, '', 'id');
  const live = all.filter((r) => !r.final).length;
  $('#device-count').textContent = state.filter
    ? `showing ${fmtInt(rows.length)} of ${fmtInt(all.length)} devices`
    : `${fmtInt(all.length)} device${all.length === 1 ? '' : 's'} · ${fmtInt(live)} live, ${fmtInt(all.length - live)} final`;
  $('#devices-empty').hidden = rows.length > 0;
  $('#devices-empty').textContent = all.length ? 'No device matches the filter.' : 'No windows yet.';
  renderDevicePicker($('#device-select'), all.map((r) => r.device_id), state.selected);
  renderHealth($('#health'), doc);
  renderFleet($('#fleet'), doc, select);
  $('#watermark').textContent = doc?.watermark ? fmtTime(parseTime(doc.watermark)) : '–';
  $('#watermark').title = doc?.watermark ?? '';
  renderStatus();
  refreshHistory();
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

function select(deviceId) {
  state.selected = deviceId || null;
  const url = state.selected ? `#device=${encodeURIComponent(state.selected)}` : location.pathname + location.search;
  history.replaceState(null, '', url);
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

/** Draws `rows`, or shows `emptyText` in place of the chart when there are none. */
function showHistory(rows, emptyText, note) {
  historyChart.update(rows);
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
$('#history-clear').addEventListener('click', () => select(null));
window.addEventListener('resize', () => state.doc && deviceCharts.update(deviceRows(state.doc, state.filter, state.sort), state.selected));
setInterval(() => {
  renderAge($('#health'), state.doc);
  renderStatus();
}, 1000);

const fromHash = new URLSearchParams(location.hash.slice(1)).get('device');
if (fromHash) state.selected = fromHash;

$('#endpoints').append(
  ...['/metrics', '/api/health', '/metrics/prometheus'].map((href) => el('a', href, { href })),
);
render();
pollOnce();
connect();
