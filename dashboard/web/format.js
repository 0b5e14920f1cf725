// Formatting of numbers, durations and times for the dashboard page. Pure functions, no DOM.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const twoDecimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** A count with thousands separators, or an en dash when unknown. */
export function fmtInt(n) {
  return Number.isFinite(n) ? integer.format(n) : '–';
}

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumSignificantDigits: 3 });

/** A number that must fit a small tile: exact below `limit`, else compact (`12.3M`). */
export function fmtFit(n, limit, exact = fmtInt) {
  if (!Number.isFinite(n)) return '–';
  return Math.abs(n) < limit ? exact(n) : compact.format(n);
}

/** A measurement with one decimal and its unit. */
export function fmt1(n, unit = '') {
  return Number.isFinite(n) ? `${oneDecimal.format(n)}${unit}` : '–';
}

/** A measurement with two decimals and its unit. */
export function fmt2(n, unit = '') {
  return Number.isFinite(n) ? `${twoDecimals.format(n)}${unit}` : '–';
}

/** A duration in milliseconds as `850 ms`, `12.3 s`, `4 min 05 s` or `2 h 03 min`. */
export function fmtDurationMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  const sign = ms < 0 ? '−' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${integer.format(a)} ms`;
  if (a < 60_000) return `${sign}${oneDecimal.format(a / 1000)} s`;
  const s = Math.floor(a / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s < 86400) return `${sign}${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
  return `${sign}${Math.floor(s / 86400)} d ${Math.floor(s / 3600) % 24} h`;
}

/** How long ago an epoch-seconds instant was, short enough for a tile: `42 s`, `2 min 05 s`, `23 min`, `3 h 04 min`. */
export function fmtAge(epochSeconds, nowMs = Date.now()) {
  if (!Number.isFinite(epochSeconds) || epochSeconds <= 0) return 'never';
  const s = Math.max(0, Math.floor(nowMs / 1000 - epochSeconds));
  if (s < 60) return `${s} s`;
  if (s >= 600 && s < 3600) return `${Math.floor(s / 60)} min`;
  return fmtDurationMs(s * 1000);
}

/** Epoch milliseconds as local `HH:MM:SS`, with the date when it is not today. */
export function fmtTime(ms, withDate = false) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const time = d.toLocaleTimeString('en-GB', { hour12: false });
  if (!withDate && d.toDateString() === new Date().toDateString()) return time;
  return `${d.toLocaleDateString('en-CA')} ${time}`;
}

/** An RFC 3339 time as epoch milliseconds (NaN when absent or unreadable). */
export function parseTime(text) {
  if (typeof text !== 'string') return NaN;
  // A time without a zone (the seed's Spark job writes `2024-11-03T14:30:00` or `2024-11-03 14:30:00`) is UTC,
  // as the job's own times are; JavaScript would take it for local time.
  const local = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(:\d\d(\.\d+)?)?)$/.exec(text);
  return Date.parse(local ? `${local[1]}T${local[2]}Z` : text);
}

const seconds = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/** A configured or exact duration in milliseconds, without rounding: `500 ms`, `10 s`, `1.5 s`, `1 min 30 s`,
 *  `2 h`, `1 d 6 h`. */
export function fmtSpanMs(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${integer.format(ms)} ms`;
  const parts = [];
  let rest = ms;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000]]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${seconds.format(rest / 1000)} s`);
  return parts.join(' ');
}

/** The job's window kind (`latest.json`'s `window`) for the header: `tumbling 10 s`, `hopping 30 s every 10 s`,
 *  `sessions, gap 5 s`; plain `tumbling` for a document of an older job, which does not state it. */
export function fmtWindowKind(window) {
  switch (window?.kind) {
    case undefined:
      return 'tumbling';
    case 'tumbling':
      return `tumbling ${fmtSpanMs(window.size_ms)}`;
    case 'hopping':
      return `hopping ${fmtSpanMs(window.size_ms)} every ${fmtSpanMs(window.slide_ms)}`;
    case 'session':
      return `sessions, gap ${fmtSpanMs(window.gap_ms)}`;
    default:
      return String(window.kind);
  }
}

/** Whether a document's windows are sessions, whose lengths vary from record to record. */
export function isSessions(doc) {
  return doc?.window?.kind === 'session';
}

/** The length of a record's window in milliseconds (for sessions: first event to last event + gap). */
export function windowMs(record) {
  return parseTime(record?.window_end) - parseTime(record?.window_start);
}

/** A window as `14:30:00–14:30:10`; with `session`, followed by its length: `14:30:00–14:30:42 · session 42 s`. */
export function fmtWindow(startText, endText, session = false) {
  const s = parseTime(startText);
  const e = parseTime(endText);
  const text = `${fmtTime(s)}–${fmtTime(e).split(' ').pop()}`;
  return session ? `${text} · session ${fmtSpanMs(e - s)}` : text;
}

/** Shortens a long label for an axis tick; the tooltip keeps the full text. */
export function shorten(text, max = 16) {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** The value types of UDF columns that hold numbers: such a column can be charted and sorted by. */
const NUMERIC_UDF_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'float32', 'float64']);

/** Whether a UDF column of `latest.json`'s `udfs` (`{name, kind, type}`) holds numbers. */
export function isNumericUdf(column) {
  return NUMERIC_UDF_TYPES.has(column?.type);
}

/** A UDF value as a number for a chart or a sort; null when it is null, absent or not a finite number. */
export function udfNumber(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

const upToThreeDecimals = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/** A number with separators and at most three decimals (`1,234.5`, `0.25`). */
export function fmtNum(n) {
  return Number.isFinite(n) ? upToThreeDecimals.format(n) : '–';
}

/** A UDF value as text: `—` for null or absent (no value: the function returned none or failed), numbers with
 *  separators and at most three decimals, booleans and strings as they are. */
export function fmtUdf(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return upToThreeDecimals.format(value);
  return String(value);
}

/** The output types of `latest.json`'s `columns` that hold numbers: such a column can be charted and sorted by. */
const NUMERIC_COLUMN_TYPES = new Set(['BIGINT', 'DOUBLE']);

/** Whether an output column (`{name, type, role, nullable}`) is a value that holds numbers. */
export function isNumericColumn(column) {
  return column?.role === 'value' && NUMERIC_COLUMN_TYPES.has(column?.type);
}

/** A record's value of an output column as text: a time as local time with its date, other values as
 *  `fmtUdf` prints them (`—` for null). */
export function fmtCell(value, column) {
  if (typeof value === 'string' && (column?.type === 'TIMESTAMP' || column?.role === 'window')) {
    const ms = parseTime(value);
    return Number.isFinite(ms) ? fmtTime(ms, true) : value;
  }
  return fmtUdf(value);
}
