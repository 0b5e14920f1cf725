// Shared helpers of the browser test: the check runner and its assertions, fixture file helpers, and readers of
// what the page's charts hold.

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

/** Prints the tally and gives the exit status. */
export function tally() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`browser: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}
