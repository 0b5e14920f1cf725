// Shared helpers of the browser test: the check runner and its assertions, fixture file helpers, expectations
// computed from the fixture files, and readers and pointers of what the page's charts hold.

import fs from 'node:fs';

export const UPDATE_LIMIT_MS = 2000;
export const results = [];

export async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name}\n      ${String(err?.stack ?? err).split('\n').join('\n      ')}`);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}:\n  expected ${e}\n  actual   ${a}`);
}

export const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

export function writeAtomically(file, text) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** Newest window per device: later start wins, a final record wins a tie. */
export function newest(doc) {
  const m = new Map();
  for (const r of doc.records) {
    const cur = m.get(r.device_id);
    const t = Date.parse(r.window_start);
    if (!cur || t > Date.parse(cur.window_start) || (t === Date.parse(cur.window_start) && r.final && !cur.final)) {
      m.set(r.device_id, r);
    }
  }
  return m;
}

export async function chartData(page, id) {
  return page.evaluate((canvasId) => {
    const chart = window.Chart.getChart(document.getElementById(canvasId));
    if (!chart) return null;
    return {
      labels: [...chart.data.labels],
      datasets: chart.data.datasets.map((d) => ({
        label: d.label,
        data: JSON.parse(JSON.stringify(d.data)),
        hatched: Array.isArray(d.backgroundColor) ? d.backgroundColor.map((c) => c instanceof CanvasPattern) : null,
      })),
    };
  }, id);
}

export async function waitForDevices(page, n, timeout = 10_000) {
  await page.waitForFunction(
    (count) => {
      const c = window.Chart?.getChart(document.getElementById('chart-temperature'));
      return c && c.data.labels.length === count;
    },
    n,
    { timeout },
  );
}

/** Label → value pairs, sorted by label, from a chart's data. */
export function pairs(labels, values) {
  return labels.map((l, i) => [l, values[i]]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

export function expectedPairs(doc, f) {
  return [...newest(doc).values()].map((r) => [r.device_id, f(r)]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** The newest window of `id` and its last final window (undefined when it has none). */
export function windowsOf(doc, id) {
  const finals = doc.records.filter((r) => r.device_id === id && r.final);
  finals.sort((a, b) => Date.parse(b.window_start) - Date.parse(a.window_start));
  return { newest: newest(doc).get(id), lastFinal: finals[0] };
}

/** A UDF value as the page must print it: an em dash for no value, numbers with at most three decimals. */
export function udfText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return v.toLocaleString('en-US', { maximumFractionDigits: 3 });
  return String(v);
}

/** A record's window length, ms (a session's length for sessions). */
export const lengthMs = (r) => Date.parse(r.window_end) - Date.parse(r.window_start);

/** A duration as the page must print it: `5 s`, `1 min 34 s`, `1 h 2 min`. */
export function spanText(ms) {
  if (ms < 1000) return `${ms} ms`;
  const parts = [];
  let rest = ms;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000]]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${(rest / 1000).toLocaleString('en-US', { maximumFractionDigits: 3 })} s`);
  return parts.join(' ');
}

export async function historyMatches(page, rows, timeout = 5000) {
  const want = rows.map((r) => ({ x: r.window_start, y: r.avg_temperature }));
  await page.waitForFunction(
    (expected) => {
      const c = window.Chart?.getChart(document.getElementById('chart-history'));
      return c && JSON.stringify(c.data.datasets[0].data) === JSON.stringify(expected);
    },
    want,
    { timeout },
  );
  const h = await chartData(page, 'chart-history');
  assertEqual(h.datasets[0].data, want, 'history temperature points');
  assertEqual(h.datasets[1].data, rows.map((r) => ({ x: r.window_start, y: r.avg_humidity })), 'history humidity points');
  assertEqual(h.datasets[2].data, rows.map((r) => ({ x: r.window_start, y: r.min_battery })), 'history battery points');
}

/** Waits until the UDF table shows the records of `deviceId` (fetched from /api/device once it is selected). */
export async function udfTableOf(page, deviceId, timeout = 3000) {
  await page.waitForFunction((id) => document.getElementById('device-udfs').dataset.device === id, deviceId, { timeout });
}

/** Clicks the middle of the temperature bar of `deviceId`. */
export async function clickBar(page, deviceId) {
  const pos = await barPosition(page, deviceId);
  await page.mouse.click(pos.x, pos.y);
}

/** The lines of the tooltip the temperature chart shows while the mouse is over the bar of `deviceId`. The bars
 *  may still be moving (an animation, a layout change), so the pointer is placed again until the tooltip is the
 *  device's. */
export async function barTooltip(page, deviceId) {
  let seen = null;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const pos = await barPosition(page, deviceId);
    await page.mouse.move(pos.x, pos.y - 2, { steps: 3 });
    await page.mouse.move(pos.x, pos.y);
    const handle = await page.waitForFunction(
      (id) => {
        const chart = window.Chart.getChart(document.getElementById('chart-temperature'));
        const active = chart.tooltip.getActiveElements();
        if (active.length === 0 || chart.data.labels[active[0].index] !== id) return null;
        return chart.tooltip.body.flatMap((b) => [...b.before, ...b.lines, ...b.after]);
      },
      deviceId,
      { timeout: 1000 },
    ).catch(() => null);
    if (handle) {
      const lines = await handle.jsonValue();
      await page.mouse.move(0, 0);
      return lines;
    }
    seen = await page.evaluate(() => {
      const chart = window.Chart.getChart(document.getElementById('chart-temperature'));
      return chart.tooltip.getActiveElements().map((a) => chart.data.labels[a.index]);
    });
  }
  throw new Error(`no tooltip for ${deviceId} after 5 attempts (active: ${JSON.stringify(seen)})`);
}

/** The middle of the temperature bar of `deviceId`, in page coordinates (scrolled into view). */
export async function barPosition(page, deviceId) {
  return page.evaluate((id) => {
    const canvas = document.getElementById('chart-temperature');
    const chart = window.Chart.getChart(canvas);
    const i = chart.data.labels.indexOf(id);
    const bar = chart.getDatasetMeta(0).data[i];
    canvas.scrollIntoView({ block: 'center' });
    const box = canvas.getBoundingClientRect();
    // A bar's base may lie below the plot area (the temperature axis does not start at zero).
    const bottom = Math.min(bar.base, chart.chartArea.bottom);
    return { x: box.left + bar.x, y: box.top + (bar.y + bottom) / 2 };
  }, deviceId);
}

/** Prints the tally and gives the exit status. */
export function tally() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`browser: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}
