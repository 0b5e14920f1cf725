// Browser test of the dashboard page in headless Chromium (playwright-core, system Chromium). Started by
// run.sh, which builds the dashboard, writes the fixtures and starts five dashboards (8 and 200 devices with
// tumbling windows, 6 devices with sessions, 12 groups of a query that is not the seed's whose checks are in
// queries.mjs, and a fleet of 10,000 devices whose checks are in fleet.mjs).
// Every check reads what the page really draws (Chart.js chart data, DOM text) and compares it with values
// computed here from the fixture files. Prints `browser: N passed, M failed` and exits non-zero on failure.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { fleetChecks } from './fleet.mjs';
import {
  UPDATE_LIMIT_MS, assert, assertEqual, barTooltip, chartData, check, clickBar, expectedPairs, historyMatches, newest, pairs,
  readJson, tally, udfTableOf, udfText, waitForDevices, windowsOf, writeAtomically,
} from './helpers.mjs';
import { queryChecks } from './queries.mjs';
import { sessionChecks } from './sessions.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const need = [
  'url8', 'data8', 'history8', 'url200', 'data200', 'urlSessions', 'dataSessions', 'historySessions', 'urlQuery', 'dataQuery',
  'historyQuery', 'url10k', 'data10k', 'shots', 'chromium',
];
for (const k of need) if (!args[k]) throw new Error(`missing --${k}`);

// ---- the run ---------------------------------------------------------------------------------------------

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
} catch (err) {
  console.log(`FAIL  launching Chromium at ${args.chromium}: ${err.message}`);
  console.log('browser: 0 passed, 1 failed');
  process.exit(1);
}

const latest8 = path.join(args.data8, 'latest.json');
const original8 = fs.readFileSync(latest8, 'utf8');
const doc8 = JSON.parse(original8);
const history8 = readJson(args.history8);
const latest200 = path.join(args.data200, 'latest.json');
const original200 = fs.readFileSync(latest200, 'utf8');
const doc200 = JSON.parse(original200);

const page = context.pages()[0] ?? (await context.newPage());
const consoleErrors = [];
page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));

try {
  await check('page loads and draws the 8 devices; load time and size measured', async () => {
    await page.goto(args.url8, { waitUntil: 'load' });
    await waitForDevices(page, 8);
    const m = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const resources = performance.getEntriesByType('resource').filter((r) => !r.name.endsWith('/events'));
      return {
        dcl: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        drawn: performance.now(),
        bytes: nav.transferSize + resources.reduce((s, r) => s + r.transferSize, 0),
        decoded: nav.decodedBodySize + resources.reduce((s, r) => s + r.decodedBodySize, 0),
        requests: 1 + resources.length,
      };
    });
    console.log(
      `      page load: DOMContentLoaded ${m.dcl.toFixed(0)} ms, load ${m.load.toFixed(0)} ms, data drawn by ` +
        `${m.drawn.toFixed(0)} ms; transferred ${(m.bytes / 1024).toFixed(1)} KiB ` +
        `(${(m.decoded / 1024).toFixed(1)} KiB decoded) in ${m.requests} requests (+ the /events stream)`,
    );
    assert(m.load < 5000, `load took ${m.load} ms`);
  });

  await check('the header states the window kind: tumbling 10 s', async () => {
    assertEqual(doc8.window, { kind: 'tumbling', size_ms: 10_000 }, 'window of the fixture');
    assertEqual(await page.locator('#window-kind').innerText(), 'tumbling 10 s', 'window kind');
    const tooltip = await barTooltip(page, [...newest(doc8).keys()][0]);
    const line = tooltip.find((l) => l.startsWith('window '));
    assert(line && !line.includes('session'), `tumbling tooltip without a session length: ${JSON.stringify(tooltip)}`);
  });

  await check('temperature chart shows exactly the devices and values of latest.json', async () => {
    const c = await chartData(page, 'chart-temperature');
    assertEqual(pairs(c.labels, c.datasets[0].data), expectedPairs(doc8, (r) => r.avg_temperature), 'temperature');
  });

  await check('humidity chart shows exactly the devices and values of latest.json', async () => {
    const c = await chartData(page, 'chart-humidity');
    assertEqual(pairs(c.labels, c.datasets[0].data), expectedPairs(doc8, (r) => r.avg_humidity), 'humidity');
  });

  await check('battery chart shows min and max battery of every device', async () => {
    const c = await chartData(page, 'chart-battery');
    assertEqual(pairs(c.labels, c.datasets[0].data), expectedPairs(doc8, (r) => r.min_battery), 'min battery');
    assertEqual(pairs(c.labels, c.datasets[1].data), expectedPairs(doc8, (r) => [r.min_battery, r.max_battery]), 'battery range');
  });

  await check('live windows are hatched and final ones solid, with a legend', async () => {
    const expected = expectedPairs(doc8, (r) => !r.final);
    assert(expected.some(([, live]) => live) && expected.some(([, live]) => !live), 'fixture mixes live and final');
    for (const id of ['chart-temperature', 'chart-humidity', 'chart-battery']) {
      const c = await chartData(page, id);
      assertEqual(pairs(c.labels, c.datasets[0].hatched), expected, `${id} hatching`);
    }
    const legend = await page.locator('.legend-item').allInnerTexts();
    assertEqual(legend, ['final window', 'live window (still open)'], 'legend');
  });

  await check('health panel shows the pipeline counters', async () => {
    const p = doc8.pipeline;
    for (const key of ['input_rate', 'watermark_delay_ms', 'lag', 'late_total', 'bad_total', 'events_total', 'batch_ms', 'open_windows', 'workers', 'restarts']) {
      const dd = page.locator(`[data-metric="${key}"]`);
      assertEqual(await dd.getAttribute('data-value'), String(p[key]), key);
      const text = await dd.innerText();
      assert(text && text !== '–', `${key} shows ${text}`);
    }
    assertEqual(await page.locator('[data-metric="events_total"]').innerText(), p.events_total.toLocaleString('en-US'), 'events text');
    // A cluster: its processes in the workers tile's tooltip, and a restart flagged.
    assertEqual(await page.locator('[data-metric="workers"]').getAttribute('title'), `${p.workers} workers in ${p.processes} processes`, 'workers title');
    assertEqual(await page.locator('[data-metric="restarts"]').innerText(), String(p.restarts), 'restarts text');
    assertEqual(await page.locator('.stat:has([data-metric="restarts"])').getAttribute('data-level'), p.restarts > 0 ? 'warn' : '', 'restarts level');
    for (const [reason, n] of Object.entries(p.bad_by_reason)) {
      assertEqual(await page.locator(`[data-reason="${reason}"] b`).innerText(), String(n), `bad reason ${reason}`);
    }
    const age = await page.locator('[data-metric="updated"]').innerText();
    assert(/^\d+ s$/.test(age), `data age shows ${age}`);
  });

  await check('fleet table and alert list follow the fleet section', async () => {
    const rows = await page.locator('#fleet-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.location));
    assertEqual(rows, doc8.fleet.locations.map((l) => l.location).sort(), 'locations');
    const alerts = await page.locator('#alerts li.alert').evaluateAll((lis) => lis.map((li) => li.dataset.device).sort());
    assertEqual(alerts, doc8.fleet.alerts.map((a) => a.device_id).sort(), 'alerts');
    assert(alerts.length > 0, 'the fixture raises alerts');
  });

  await check('device ids are shown as text, never parsed as HTML', async () => {
    const odd = 'a/b c&d<i>x</i>';
    const options = await page.locator('#device-select option').allInnerTexts();
    assert(options.includes(odd), `picker lists ${odd}`);
    assertEqual(await page.locator('#device-select i, #alerts i, #fleet i').count(), 0, 'injected elements');
  });

  await check('clicking a bar draws that device\'s history', async () => {
    const id = '../../etc/passwd';
    await clickBar(page, id);
    await historyMatches(page, history8[id]);
    assertEqual(await page.locator('#history-device').innerText(), id, 'history title');
    assertEqual(await page.locator('#device-select').inputValue(), id, 'picker follows the click');
  });

  await check('picking a device from the list draws its history', async () => {
    const id = '\u{1F525}-sensor';
    await page.selectOption('#device-select', id);
    await historyMatches(page, history8[id]);
    assert(decodeURIComponent(new URL(page.url()).hash) === `#device=${id}`, `hash is ${page.url()}`);
    await page.locator('#history-panel').scrollIntoViewIfNeeded();
    const shot = path.join(args.shots, 'dashboard-screenshot.png');
    await page.mouse.move(0, 0);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`      screenshot (8 devices): ${shot}`);
  });

  await check('the device view shows every UDF column of the newest and the last final window', async () => {
    const udfs = doc8.udfs ?? [];
    assertEqual(udfs.map((u) => [u.name, u.kind, u.type]), [
      ['heat_index', 'scalar', 'float64'],
      ['temperature_p90', 'aggregate', 'float64'],
      ['comfort', 'scalar', 'utf8'],
    ], 'UDF columns of the fixture');
    const seen = { null: 0, number: 0, string: 0 };
    for (const id of [...newest(doc8).keys()].sort()) {
      await page.selectOption('#device-select', id);
      await udfTableOf(page, id);
      const { newest: n, lastFinal: f } = windowsOf(doc8, id);
      const want = udfs.map((u) => [u.name, udfText(n[u.name]), f ? udfText(f[u.name]) : '']);
      for (const v of udfs.flatMap((u) => [n[u.name], ...(f ? [f[u.name]] : [])])) seen[v === null ? 'null' : typeof v] += 1;
      assert(await page.locator('#device-udfs').isVisible(), `UDF table of ${id} is shown`);
      const shown = await page.evaluate(() => ({
        rows: [...document.querySelectorAll('#device-udfs tbody tr')].map((tr) => [
          tr.dataset.udf,
          tr.querySelector('td[data-window="newest"]').textContent,
          tr.querySelector('td[data-window="final"]').textContent,
        ]),
        newest: document.querySelector('#device-udfs th[data-window="newest"]').textContent,
        final: document.querySelector('#device-udfs th[data-window="final"]').textContent,
      }));
      assertEqual(shown.rows, want, `UDF values of ${id}`);
      assert(shown.newest.endsWith(n.final ? 'final' : 'live'), `newest heading of ${id}: ${shown.newest}`);
      assert(f ? shown.final.endsWith('final') : shown.final.includes('no final window'), `final heading of ${id}: ${shown.final}`);
    }
    assert(seen.null > 0 && seen.number > 0 && seen.string > 0, `the fixture shows null, numeric and text values: ${JSON.stringify(seen)}`);
  });

  await check('numeric UDF columns join the metric lists, text ones do not', async () => {
    assert(await page.locator('#history-metric').isVisible(), 'the metric list is shown');
    const metrics = await page.locator('#history-metric option').evaluateAll((os) => os.map((o) => o.value));
    assertEqual(metrics, ['', 'heat_index', 'temperature_p90'], 'history metrics');
    const sorts = await page.locator('#device-sort option').evaluateAll((os) => os.map((o) => o.value));
    assertEqual(sorts, ['id', 'temperature', 'humidity', 'battery', 'udf:heat_index', 'udf:temperature_p90'], 'sorts');
  });

  await check('picking heat_index as the metric draws its history, with gaps where the older file has none', async () => {
    const id = '\u{1F525}-sensor';
    await page.selectOption('#device-select', id);
    await historyMatches(page, history8[id]);
    const want = history8[id].map((r) => ({ x: r.window_start, y: r.heat_index }));
    assert(want.some((p) => p.y === null) && want.some((p) => p.y !== null), 'the history mixes windows with and without heat_index');
    await page.selectOption('#history-metric', 'heat_index');
    await page.waitForFunction(
      (expected) => {
        const c = window.Chart.getChart(document.getElementById('chart-history'));
        const ds = c.data.datasets.find((d) => d.label === 'heat_index');
        return ds && JSON.stringify(ds.data) === JSON.stringify(expected);
      },
      want,
      { timeout: 3000 },
    );
    const drawn = await page.evaluate(() => {
      const c = window.Chart.getChart(document.getElementById('chart-history'));
      const i = c.data.datasets.findIndex((d) => d.label === 'heat_index');
      const meta = c.getDatasetMeta(i);
      const a = c.chartArea;
      const inside = (p) => !p.skip && p.x >= a.left && p.x <= a.right && p.y >= a.top && p.y <= a.bottom;
      return {
        visible: c.data.datasets.map((d, k) => (c.isDatasetVisible(k) ? d.label : null)).filter(Boolean),
        points: meta.data.filter(inside).length,
        axis: c.options.scales[meta.yAxisID].title.text,
        legend: c.legend.legendItems.map((l) => l.text),
      };
    });
    assertEqual(drawn.visible, ['heat_index'], 'datasets shown');
    assertEqual(drawn.points, want.filter((p) => p.y !== null).length, 'points drawn inside the plot');
    assertEqual(drawn.axis, 'heat_index', 'axis title');
    assertEqual(drawn.legend, ['heat_index'], 'legend');
    assertEqual(decodeURIComponent(new URL(page.url()).hash), `#device=${id}&metric=heat_index`, 'hash');
    await page.selectOption('#history-metric', '');
    await historyMatches(page, history8[id]);
    const back = await page.evaluate(() => {
      const c = window.Chart.getChart(document.getElementById('chart-history'));
      return c.legend.legendItems.map((l) => l.text);
    });
    assertEqual(back, ['avg temperature (°C)', 'avg humidity (%)', 'min battery (%)', 'temperature ±σ'], 'legend of the measures');
    assertEqual(decodeURIComponent(new URL(page.url()).hash), `#device=${id}`, 'hash without a metric');
  });

  await check('sorting by a numeric UDF column orders the bars by its newest value', async () => {
    await page.selectOption('#device-sort', 'udf:heat_index');
    const want = [...newest(doc8).values()]
      .sort((a, b) => b.heat_index - a.heat_index || (a.device_id < b.device_id ? -1 : 1))
      .map((r) => r.device_id);
    await page.waitForFunction(
      (ids) => JSON.stringify(window.Chart.getChart(document.getElementById('chart-temperature')).data.labels) === JSON.stringify(ids),
      want,
      { timeout: 3000 },
    );
    await page.selectOption('#device-sort', 'id');
  });

  await check('UDF failures are listed in the health panel', async () => {
    for (const [name, n] of Object.entries(doc8.pipeline.udf_errors ?? {})) {
      assertEqual(await page.locator(`#udf-errors [data-udf="${name}"] b`).innerText(), String(n), `failures of ${name}`);
    }
    assert(Object.keys(doc8.pipeline.udf_errors ?? {}).length > 0, 'the fixture counts UDF failures');
  });

  await check('the page follows a rewritten latest.json without reloading, within 2 s', async () => {
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    const doc = JSON.parse(original8);
    const target = [...newest(doc).values()][0];
    target.avg_temperature = 42.42;
    doc.pipeline.events_total += 1000;
    doc.updated_at = Math.floor(Date.now() / 1000);
    const started = Date.now();
    writeAtomically(latest8, JSON.stringify(doc, null, 2));
    await page.waitForFunction(
      ([id, events]) => {
        const c = window.Chart.getChart(document.getElementById('chart-temperature'));
        const i = c.data.labels.indexOf(id);
        return c.data.datasets[0].data[i] === 42.42 &&
          document.querySelector('[data-metric="events_total"]').dataset.value === String(events);
      },
      [target.device_id, doc.pipeline.events_total],
      { timeout: UPDATE_LIMIT_MS },
    );
    console.log(`      update visible after ${Date.now() - started} ms`);
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page was reloaded');
    assertEqual(await page.locator('#connection').getAttribute('data-state'), 'live', 'connection state');
  });

  await check('a corrupt latest.json shows a banner and keeps the last good data', async () => {
    writeAtomically(latest8, '{"updated_at": 17');
    await page.waitForFunction(() => !document.getElementById('banner').hidden, null, { timeout: UPDATE_LIMIT_MS });
    const text = await page.locator('#banner').innerText();
    assert(text.includes('truncated') && text.includes('last good data'), `banner: ${text}`);
    await waitForDevices(page, 8, 1000);
    writeAtomically(latest8, original8);
    await page.waitForFunction(() => document.getElementById('banner').hidden, null, { timeout: UPDATE_LIMIT_MS });
  });

  await check('no console errors on the 8-device page', async () => {
    assertEqual(consoleErrors, [], 'console errors');
  });

  await check('without /events the page falls back to polling /api/summary', async () => {
    const p2 = await context.newPage();
    const errors = [];
    p2.on('pageerror', (e) => errors.push(e.message));
    await p2.route('**/events', (route) => route.abort());
    await p2.goto(args.url8);
    await waitForDevices(p2, 8);
    await p2.waitForFunction(() => document.getElementById('connection').dataset.state === 'polling', null, { timeout: 5000 });
    const doc = JSON.parse(original8);
    const r = [...newest(doc).values()][2];
    r.avg_humidity = 12.34;
    writeAtomically(latest8, JSON.stringify(doc));
    await p2.waitForFunction(
      (id) => {
        const c = window.Chart.getChart(document.getElementById('chart-humidity'));
        return c.data.datasets[0].data[c.data.labels.indexOf(id)] === 12.34;
      },
      r.device_id,
      { timeout: 2000 + UPDATE_LIMIT_MS },
    );
    assertEqual(errors, [], 'page errors');
    writeAtomically(latest8, original8);
    await p2.close();
  });

  const page200 = await context.newPage();
  const errors200 = [];
  page200.on('console', (m) => m.type() === 'error' && errors200.push(m.text()));
  page200.on('pageerror', (e) => errors200.push(`page error: ${e.message}`));

  await check('200 devices: every device drawn, side-scrolling with room per bar', async () => {
    await page200.goto(args.url200);
    await waitForDevices(page200, 200);
    const c = await chartData(page200, 'chart-temperature');
    assertEqual(pairs(c.labels, c.datasets[0].data), expectedPairs(doc200, (r) => r.avg_temperature), 'temperature (200)');
    const g = await page200.evaluate(() => {
      const scroller = document.querySelector('.scroll-x');
      return { scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth, sizer: document.getElementById('device-charts').offsetWidth };
    });
    assert(g.scrollWidth > g.clientWidth, `no horizontal scroll: ${JSON.stringify(g)}`);
    assert(g.sizer / 200 >= 20, `only ${g.sizer / 200} px per device`);
    const shot = path.join(args.shots, 'dashboard-screenshot-200.png');
    await page200.screenshot({ path: shot, fullPage: true });
    console.log(`      screenshot (200 devices): ${shot}`);
  });

  await check('200 devices: the filter narrows the charts to matching devices', async () => {
    const needle = 'device-1';
    await page200.fill('#device-filter', needle);
    const want = [...newest(doc200).keys()].filter((id) => id.toLowerCase().includes(needle)).sort();
    await waitForDevices(page200, want.length, 3000);
    const c = await chartData(page200, 'chart-humidity');
    assertEqual([...c.labels].sort(), want, 'filtered devices');
    const shot = path.join(args.shots, 'dashboard-screenshot-200-filtered.png');
    await page200.screenshot({ path: shot });
    await page200.fill('#device-filter', '');
    await waitForDevices(page200, 200, 3000);
  });

  await check('200 devices without UDF columns: no metric list, UDF table or failure chip', async () => {
    assert(!('udfs' in doc200), 'the 200-device fixture has no UDF columns');
    assert(await page200.locator('#history-metric').isHidden(), 'the metric list is hidden');
    const sorts = await page200.locator('#device-sort option').evaluateAll((os) => os.map((o) => o.value));
    assertEqual(sorts, ['id', 'temperature', 'humidity', 'battery'], 'sorts');
    await page200.selectOption('#device-select', [...newest(doc200).keys()][0]);
    assert(await page200.locator('#device-udfs').isHidden(), 'the UDF table is hidden');
    assertEqual(await page200.locator('#udf-errors').evaluate((e) => e.childElementCount), 0, 'UDF failure chips');
    await page200.selectOption('#device-select', '');
  });

  await check('a minimal latest.json (no fleet, no optional counters, no UDFs) still renders', async () => {
    const end = Date.now() - (Date.now() % 10_000);
    const iso = (ms) => new Date(ms).toISOString();
    const record = (id, start, final, t) => ({
      device_id: id, window_start: iso(start), window_end: iso(start + 10_000), count: 40, avg_temperature: t,
      avg_humidity: 50.5, min_battery: 80, max_battery: 81, stddev_temperature: 0.3, warn_count: 0, error_count: 0, final,
    });
    const minimal = {
      updated_at: Math.floor(Date.now() / 1000),
      watermark: null,
      records: [record('m-1', end - 20_000, true, 21.5), record('m-2', end - 10_000, false, 23.25)],
      pipeline: { events_total: 80, late_total: 0, bad_total: 0, input_rate: 4, batch_ms: 0.5, lag: 0, watermark_delay_ms: 900, workers: 1 },
    };
    writeAtomically(latest200, JSON.stringify(minimal));
    await waitForDevices(page200, 2, 2000 + UPDATE_LIMIT_MS);
    const c = await chartData(page200, 'chart-temperature');
    assertEqual(pairs(c.labels, c.datasets[0].data), [['m-1', 21.5], ['m-2', 23.25]], 'temperature');
    assert(await page200.locator('#banner').isHidden(), 'no banner');
    assertEqual(await page200.locator('#window-kind').innerText(), 'tumbling', 'window kind of an older document');
    assert(await page200.locator('#history-metric').isHidden(), 'the metric list is hidden');
    await page200.selectOption('#device-select', 'm-2');
    assert(await page200.locator('#device-udfs').isHidden(), 'the UDF table is hidden');
    assertEqual(await page200.locator('#fleet-table tbody').innerText(), 'No final windows yet.', 'fleet table');
    await page200.selectOption('#device-select', '');
    writeAtomically(latest200, original200);
    await waitForDevices(page200, 200, 2000 + UPDATE_LIMIT_MS);
  });

  await check('the seed\'s own latest.json (eight fields, times without a zone, no pipeline) is drawn', async () => {
    const end = Date.now() - (Date.now() % 10_000);
    const zoneless = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, '');
    const record = (id, t) => ({
      device_id: id, window_start: zoneless(end - 10_000), window_end: zoneless(end), count: 40,
      avg_temperature: t, avg_humidity: 55.5, min_battery: 80.1, max_battery: 85.3,
    });
    const seed = { updated_at: Date.now() / 1000, records: [record('seed-1', 24.52), record('seed-2', 21.25)] };
    writeAtomically(latest200, JSON.stringify(seed));
    await waitForDevices(page200, 2, 2000 + UPDATE_LIMIT_MS);
    const c = await chartData(page200, 'chart-temperature');
    assertEqual(pairs(c.labels, c.datasets[0].data), [['seed-1', 24.52], ['seed-2', 21.25]], 'temperature');
    assert(await page200.locator('#banner').isHidden(), 'no banner');
    assertEqual(await page200.locator('#watermark').innerText(), '–', 'no watermark');
    assertEqual(await page200.locator('[data-metric="watermark_delay_ms"]').innerText(), '–', 'no delay, not 0 ms');
    // Times without a zone are UTC, whatever the browser's zone (JavaScript alone would read them as local).
    const elsewhere = await chromium.launch({ executablePath: args.chromium, headless: true, args: ['--no-sandbox'] });
    try {
      const kolkata = await (await elsewhere.newContext({ timezoneId: 'Asia/Kolkata' })).newPage();
      await kolkata.goto(args.url200);
      const read = await kolkata.evaluate(async () => {
        const { parseTime } = await import('/static/format.js');
        return [parseTime('2024-11-03T14:30:00'), parseTime('2024-11-03 14:30:00.5'), parseTime('2024-11-03T14:30:00Z')];
      });
      const utc = Date.UTC(2024, 10, 3, 14, 30);
      assertEqual(read, [utc, utc + 500, utc], 'zone-less times read in Asia/Kolkata');
    } finally {
      await elsewhere.close();
    }
    writeAtomically(latest200, original200);
    await waitForDevices(page200, 200, 2000 + UPDATE_LIMIT_MS);
  });

  await check('hopping windows are stated in the header, with no session entries in the lists', async () => {
    const doc = { ...JSON.parse(original200), window: { kind: 'hopping', size_ms: 30_000, slide_ms: 10_000 } };
    writeAtomically(latest200, JSON.stringify(doc));
    await page200.waitForFunction(
      () => document.getElementById('window-kind').textContent === 'hopping 30 s every 10 s',
      null,
      { timeout: 2000 + UPDATE_LIMIT_MS },
    );
    const sorts = await page200.locator('#device-sort option').evaluateAll((os) => os.map((o) => o.value));
    assertEqual(sorts, ['id', 'temperature', 'humidity', 'battery'], 'sorts');
    writeAtomically(latest200, original200);
    await page200.waitForFunction(
      () => document.getElementById('window-kind').textContent === 'tumbling 10 s',
      null,
      { timeout: 2000 + UPDATE_LIMIT_MS },
    );
  });

  await check('no console errors on the 200-device page', async () => {
    assertEqual(errors200, [], 'console errors');
  });

  await sessionChecks({ context, args });

  await queryChecks({ context, args, shots: args.shots });

  await fleetChecks({ context, args, shots: args.shots });
} finally {
  fs.writeFileSync(latest8, original8);
  fs.writeFileSync(latest200, original200);
  await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}

process.exit(tally());
