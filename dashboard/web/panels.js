// The page's non-chart panels: the query in the header, pipeline health, fleet rollup by location, alerts (or why
// the query has none), the group picker, the table of the page's groups, the selected group's columns (UDF columns
// for the built-in job, every value column for any other query) and the entries of the sort and metric lists
// that depend on the document (the session length, numeric columns). Every value from the data is inserted as
// text (never as HTML), so any key, location, column name, query text or value is safe.

import { fmt1, fmtAge, fmtCell, fmtDurationMs, fmtFit, fmtInt, fmtTime, fmtUdf, fmtWindow, parseTime } from './format.js';

/** Creates an element with text content and attributes. */
export function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function setStat(root, key, text, raw, level = '', title = null) {
  const dd = root.querySelector(`[data-metric="${key}"]`);
  if (!dd) return;
  dd.textContent = text;
  dd.dataset.value = String(raw);
  dd.title = title ?? (Number.isFinite(raw) ? raw.toLocaleString('en-US', { maximumFractionDigits: 3 }) : '');
  dd.closest('.stat')?.setAttribute('data-level', level);
}

/** Seconds after which the data counts as stale (the server's --stale-after when known). */
export const staleness = { seconds: 30 };

function ageLevel(doc, nowMs) {
  const age = nowMs / 1000 - doc.updated_at;
  if (!(doc.updated_at > 0) || age > staleness.seconds) return 'bad';
  return age > staleness.seconds / 2 ? 'warn' : '';
}

/** Fills the health panel from the pipeline counters of the summary `doc`. */
export function renderHealth(root, doc, nowMs = Date.now()) {
  const p = doc?.pipeline ?? {};
  // Tiles are narrow: big numbers switch to compact notation, the exact value is in the tooltip.
  setStat(root, 'input_rate', `${fmtFit(p.input_rate, 10_000, fmt1)} /s`, p.input_rate);
  // Without a watermark (before the first event, or a document that has none) there is no delay to show.
  const delay = doc?.watermark ? p.watermark_delay_ms : NaN;
  setStat(root, 'watermark_delay_ms', fmtDurationMs(delay), delay);
  setStat(root, 'lag', fmtFit(p.lag, 10_000_000), p.lag, p.lag > 10_000 ? 'warn' : '');
  setStat(root, 'late_total', fmtFit(p.late_total, 10_000_000), p.late_total, p.late_total > 0 ? 'warn' : '');
  setStat(root, 'bad_total', fmtFit(p.bad_total, 10_000_000), p.bad_total, p.bad_total > 0 ? 'warn' : '');
  setStat(root, 'events_total', fmtFit(p.events_total, 10_000_000), p.events_total);
  setStat(root, 'batch_ms', `${fmtFit(p.batch_ms, 10_000, fmt1)} ms`, p.batch_ms);
  setStat(root, 'open_windows', fmtFit(p.open_windows, 10_000_000), p.open_windows);
  // A cluster's process count goes in the tooltip: the tile is too narrow for both.
  const inProcesses = p.processes > 1 ? `${fmtInt(p.workers)} workers in ${fmtInt(p.processes)} processes` : null;
  setStat(root, 'workers', fmtInt(p.workers), p.workers, '', inProcesses);
  setStat(root, 'restarts', fmtInt(p.restarts ?? 0), p.restarts ?? 0, p.restarts > 0 ? 'warn' : '');
  renderAge(root, doc, nowMs);

  const reasons = root.querySelector('#bad-reasons');
  reasons.replaceChildren();
  const entries = Object.entries(p.bad_by_reason ?? {}).filter(([, n]) => n > 0);
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (entries.length) {
    reasons.append(el('span', 'bad events by reason:', { class: 'muted' }));
    for (const [reason, n] of entries) {
      const chip = el('span', null, { class: 'chip', 'data-reason': reason });
      chip.append(el('span', reason), el('b', fmtInt(n)));
      reasons.append(chip);
    }
  }

  const udfErrors = root.querySelector('#udf-errors');
  udfErrors.replaceChildren();
  const failed = Object.entries(p.udf_errors ?? {}).filter(([, n]) => n > 0);
  failed.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (failed.length) {
    udfErrors.append(el('span', 'UDF failures (rows left null):', { class: 'muted' }));
    for (const [name, n] of failed) {
      const chip = el('span', null, { class: 'chip udf', 'data-udf': name });
      chip.append(el('span', name), el('b', fmtInt(n)));
      udfErrors.append(chip);
    }
  }
}

/** Updates only the age of the document (called every second). */
export function renderAge(root, doc, nowMs = Date.now()) {
  if (!doc) return;
  const written = doc.updated_at > 0 ? `written ${new Date(doc.updated_at * 1000).toISOString()}` : '';
  setStat(root, 'updated', fmtAge(doc.updated_at, nowMs), doc.updated_at, ageLevel(doc, nowMs), written);
}

const ALERT_LABELS = {
  battery_low: ['Battery low', (v) => fmt1(v, ' %')],
  status_error: ['Status error', (v) => `${fmtInt(v)} error${v === 1 ? '' : 's'}`],
  temperature_high: ['Temp. high', (v) => fmt1(v, ' °C')],
  temperature_low: ['Temp. low', (v) => fmt1(v, ' °C')],
};
const ALERTS_SHOWN = 50;

/** Fills the per-location table and the alert list from the summary's fleet views (whose alert list the server
 *  cut short: `alerts_total` counts them all); clicking an alert's device selects it. */
export function renderFleet(root, summary, onSelect) {
  const fleet = summary?.fleet ?? { devices: 0, locations: [], alerts: [] };
  // A query whose output lacks the columns the fleet views need has none: say why instead of empty tables.
  const unavailable = root.querySelector('#fleet-unavailable');
  unavailable.hidden = !fleet.unavailable;
  unavailable.textContent = fleet.unavailable ? `No fleet views or alerts for this query: ${fleet.unavailable}.` : '';
  root.dataset.fleet = fleet.unavailable ? 'unavailable' : 'shown';
  root.querySelector('#fleet-devices').textContent = fleet.unavailable
    ? ''
    : `${fmtInt(fleet.devices)} device${fleet.devices === 1 ? '' : 's'} with a final window`;

  const body = root.querySelector('#fleet-table tbody');
  const locations = [...(fleet.locations ?? [])].sort((a, b) => (a.location < b.location ? -1 : 1));
  body.replaceChildren(
    ...locations.map((l) => {
      const tr = el('tr', null, { 'data-location': l.location });
      tr.append(
        el('th', l.location, { scope: 'row' }),
        el('td', fmtInt(l.devices)),
        el('td', fmtInt(l.events)),
        el('td', fmt1(l.avg_temperature, ' °C')),
        el('td', fmt1(l.avg_humidity, ' %')),
        el('td', fmt1(l.min_battery, ' %'), { class: l.min_battery < 20 ? 'bad' : '' }),
        el('td', fmtInt(l.warn_count), { class: l.warn_count > 0 ? 'warn' : '' }),
        el('td', fmtInt(l.error_count), { class: l.error_count > 0 ? 'bad' : '' }),
      );
      return tr;
    }),
  );
  if (!locations.length) {
    const tr = el('tr');
    tr.append(el('td', 'No final windows yet.', { colspan: '8', class: 'muted' }));
    body.append(tr);
  }

  const list = root.querySelector('#alerts');
  const alerts = [...(fleet.alerts ?? [])].sort(
    (a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.device_id < b.device_id ? -1 : 1),
  );
  const total = fleet.alerts_total ?? alerts.length;
  root.querySelector('#alert-count').textContent = total ? `(${fmtInt(total)})` : '';
  list.replaceChildren(
    ...alerts.slice(0, ALERTS_SHOWN).map((a) => {
      const [label, fmt] = ALERT_LABELS[a.kind] ?? [a.kind, (v) => fmt1(v)];
      const li = el('li', null, { class: `alert kind-${a.kind.replace(/[^a-z_]/g, '')}`, 'data-device': a.device_id });
      const device = el('button', a.device_id, { type: 'button', class: 'linkish', title: `show history of ${a.device_id}` });
      device.addEventListener('click', () => onSelect(a.device_id));
      li.append(el('span', label, { class: 'kind' }), device, el('span', fmt(a.value), { class: 'value' }),
        el('span', fmtTime(parseTime(a.window_end)), { class: 'muted when', title: a.window_end }));
      return li;
    }),
  );
  const shown = Math.min(alerts.length, ALERTS_SHOWN);
  if (total > shown) list.append(el('li', `… and ${fmtInt(total - shown)} more`, { class: 'muted more' }));
  if (!alerts.length) list.append(el('li', 'No active alerts.', { class: 'muted none' }));
}

/** Keeps the group picker in sync with `deviceIds` (the labels of the groups of the current page, and the
 *  selected one), preserving the selection. */
export function renderDevicePicker(select, deviceIds, selected) {
  const current = [...select.options].slice(1).map((o) => o.value);
  if (current.length !== deviceIds.length || current.some((v, i) => v !== deviceIds[i])) {
    select.replaceChildren(select.options[0], ...deviceIds.map((id) => el('option', id, { value: id })));
  }
  select.value = selected && deviceIds.includes(selected) ? selected : '';
}

/** Shows or hides the problem banner. */
export function renderBanner(banner, message) {
  banner.hidden = !message;
  banner.textContent = message ?? '';
}

/** One header cell of the columns table: which window, and when (with its length when windows are `sessions`). */
function windowHeading(th, title, record, missing, sessions) {
  th.replaceChildren(title);
  if (record) {
    const when = `${fmtWindow(record.window_start, record.window_end, sessions)} · ${record.final ? 'final' : 'live'}`;
    th.append(el('span', when, { class: 'muted window' }));
  } else {
    th.append(el('span', missing, { class: 'muted window' }));
  }
}

/** One value cell of the columns table. */
function udfCell(column, record, which) {
  if (!record) return el('td', '', { 'data-window': which });
  const value = record[column.name];
  const td = el('td', fmtUdf(value), { 'data-window': which, 'data-value': JSON.stringify(value ?? null) });
  if (value === null || value === undefined) {
    td.dataset.null = '';
    td.title = column.kind
      ? 'no value: the function returned none or failed on this window'
      : 'no value (NULL) in this window';
  }
  return td;
}

/** Fills the selected group's columns table: one row per column of `columns` (UDF columns `{name, kind, type}`,
 *  or any value columns `{name, type}`), its value in the group's `newest` window and in its `lastFinal` one
 *  (records of latest.json; either may be missing; with `sessions`, the headings give the sessions' lengths),
 *  under the caption `caption`. Hidden without columns or without a window of the group. */
export function renderDeviceUdfs(root, columns, newest, lastFinal, sessions = false, caption = 'UDF columns') {
  const body = root.querySelector('tbody');
  root.hidden = !columns?.length || !(newest || lastFinal);
  if (root.hidden) {
    body.replaceChildren();
    return;
  }
  root.querySelector('caption').textContent = caption;
  root.querySelector('thead th').textContent = columns[0].kind ? 'UDF' : 'column';
  windowHeading(root.querySelector('th[data-window="newest"]'), 'newest window', newest, 'none', sessions);
  windowHeading(root.querySelector('th[data-window="final"]'), 'last final window', lastFinal, 'no final window yet', sessions);
  body.replaceChildren(
    ...columns.map((u) => {
      const tr = el('tr', null, { 'data-udf': u.name });
      const name = el('th', u.name, { scope: 'row' });
      name.append(el('span', u.kind ? `${u.kind} · ${u.type}` : u.type, { class: 'muted type' }));
      tr.append(name, udfCell(u, newest, 'newest'), udfCell(u, lastFinal, 'final'));
      return tr;
    }),
  );
}

/** Fills the table of the page's groups: one row per group (its label in `labels`, its newest window in
 *  `rows`), one cell per output column of `columns` and whether the window is final; clicking a row selects its
 *  group. Each cell keeps the value as written in `data-value`. */
export function renderGroupTable(root, columns, rows, labels, selected, onSelect) {
  const head = root.querySelector('thead tr');
  const names = [...columns.map((c) => c.name), 'final'];
  if ([...head.children].map((th) => th.textContent).join('\n') !== names.join('\n')) {
    head.replaceChildren(...names.map((n) => el('th', n, { scope: 'col', 'data-column': n })));
  }
  root.querySelector('tbody').replaceChildren(
    ...rows.map((r, i) => {
      const tr = el('tr', null, { 'data-label': labels[i] });
      if (labels[i] === selected) tr.dataset.selected = '';
      tr.addEventListener('click', () => onSelect(labels[i]));
      for (const c of columns) {
        const value = r[c.name] ?? null;
        const td = el(c.role === 'key' ? 'th' : 'td', fmtCell(value, c), { 'data-column': c.name, 'data-value': JSON.stringify(value) });
        if (value === null) td.dataset.null = '';
        tr.append(td);
      }
      tr.append(el('td', r.final ? 'final' : 'live', { 'data-column': 'final', 'data-value': String(Boolean(r.final)) }));
      return tr;
    }),
  );
}

/** Shows the job's query in the header (a collapsed text whose summary is its first `SELECT` line), or hides
 *  it when there is none to show. */
export function renderQuery(details, query) {
  const sql = query?.sql?.trim() ?? '';
  details.hidden = !sql;
  const pre = details.querySelector('pre');
  if (pre.textContent === sql) return;
  pre.textContent = sql;
  const select = sql.split('\n').find((l) => /^\s*select\b/i.test(l)) ?? sql.split('\n')[0] ?? '';
  details.querySelector('.query-line').textContent = select.trim();
}

/** Keeps the entries of a list of metrics that depend on the document (`<option data-extra>` after the built-in
 *  ones: the session length, numeric UDF columns) equal to `options` (`[{value, text}]`) and hides the list when
 *  `hideWithout` and there are none; the built-in entries stay. */
export function renderExtraOptions(select, options, hideWithout = false) {
  const current = [...select.querySelectorAll('option[data-extra]')];
  const same = current.length === options.length &&
    current.every((o, i) => o.value === options[i].value && o.textContent === options[i].text);
  if (!same) {
    current.forEach((o) => o.remove());
    select.append(...options.map(({ value, text }) => el('option', text, { value, 'data-extra': '' })));
  }
  if (hideWithout) select.hidden = options.length === 0;
}
