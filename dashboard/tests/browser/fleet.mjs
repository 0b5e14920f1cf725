// The browser test's checks of a fleet of 10,000 devices: every chart drawn (a canvas of bounded width whose
// pixels are not blank), top and bottom N by a metric, paging and the filter against values computed here from
// the fixture file, the JS heap of the open page after a garbage collection, and the bytes one device's change
// pushes over /events (read with a plain HTTP client beside the page, as the page's EventSource receives them).

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { UPDATE_LIMIT_MS, assert, assertEqual, chartData, check, newest, waitForDevices, writeAtomically } from './helpers.mjs';

const DEVICES = 10_000;
const PAGE = 200;
/** Widest canvas allowed: Chromium leaves a canvas of 260,000 px blank; 200 bars need 5,200 px. */
const MAX_CANVAS_PX = 8192;
const MAX_HEAP_BYTES = 60 * 1024 * 1024;
const MAX_PUSH_BYTES = 300 * 1024;
const CANVASES = ['chart-temperature', 'chart-humidity', 'chart-battery', 'chart-histogram'];

/** Ids ordered as the server orders them (by id: JavaScript's `<` agrees for these ids). */
const byId = (a, b) => (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0);

/** Opens GET /events on `url` and collects its events as `{event, data, bytes}` (bytes of the whole frame on the
 *  wire, `event:`/`data:`/`id:` lines included). */
function openEvents(url) {
  const events = [];
  const waiters = [];
  let buffer = '';
  const req = http.get(new URL('/events', url), { headers: { accept: 'text/event-stream' } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end + 2);
        buffer = buffer.slice(end + 2);
        const lines = frame.split('\n');
        const event = lines.find((l) => l.startsWith('event:'))?.slice(6) ?? '';
        const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
        events.push({ event, data, bytes: Buffer.byteLength(frame) });
        waiters.splice(0).forEach((w) => w());
      }
    });
  });
  req.on('error', () => {});
  return {
    events,
    /** The first event after `from` named `name`, waiting up to `timeout` ms. */
    async next(name, from, timeout) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const hit = events.slice(from).find((e) => e.event === name);
        if (hit) return hit;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no \`${name}\` event within ${timeout} ms (got ${events.map((e) => e.event)})`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, left);
        });
      }
    },
    close: () => req.destroy(),
  };
}

/** Width, height and painted pixels of each chart canvas. */
async function canvases(page) {
  return page.evaluate((ids) => ids.map((id) => {
    const c = document.getElementById(id);
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
    return { id, width: c.width, height: c.height, painted };
  }), CANVASES);
}

async function labelsAre(page, ids, timeout = 5000) {
  await page.waitForFunction(
    (want) => JSON.stringify(window.Chart.getChart(document.getElementById('chart-temperature')).data.labels) === JSON.stringify(want),
    ids,
    { timeout },
  );
}

export async function fleetChecks({ context, args, shots }) {
  const latest = path.join(args.data10k, 'latest.json');
  const original = fs.readFileSync(latest, 'utf8');
  const doc = JSON.parse(original);
  const rows = [...newest(doc).values()];
  const hottest = [...rows].sort((a, b) => b.avg_temperature - a.avg_temperature || byId(a, b)).map((r) => r.device_id);
  const coolest = [...rows].sort((a, b) => a.avg_temperature - b.avg_temperature || byId(a, b)).map((r) => r.device_id);

  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  try {
    await check('10,000 devices: one page of 200 bars, the histogram of every device; every chart drawn', async () => {
      assertEqual(rows.length, DEVICES, 'devices in the fixture');
      const started = Date.now();
      await page.goto(args.url10k);
      await waitForDevices(page, PAGE, 20_000);
      await page.waitForFunction((n) => {
        const c = window.Chart.getChart(document.getElementById('chart-histogram'));
        return c && c.data.datasets[0].data.reduce((s, v) => s + v, 0) === n;
      }, DEVICES, { timeout: 5000 });
      console.log(`      10,000 devices drawn ${Date.now() - started} ms after navigation`);
      const c = await chartData(page, 'chart-temperature');
      assertEqual(c.labels, rows.map((r) => r.device_id).sort().slice(0, PAGE), 'the first page by device id');
      const live = rows.filter((r) => !r.final).length;
      assertEqual(await page.locator('#device-count').innerText(),
        `10,000 devices · ${live.toLocaleString('en-US')} live, ${(DEVICES - live).toLocaleString('en-US')} final`, 'device count');
      assertEqual(await page.locator('#page-info').innerText(), '1–200 of 10,000', 'pager');
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      const drawn = await canvases(page);
      console.log(`      canvases: ${drawn.map((d) => `${d.id} ${d.width}×${d.height} px (${d.painted} painted)`).join(', ')}`);
      for (const d of drawn) {
        assert(d.width > 0 && d.width <= MAX_CANVAS_PX, `${d.id} is ${d.width} px wide`);
        assert(d.painted > 0.02 * d.width * d.height, `${d.id} is blank: ${d.painted} of ${d.width * d.height} pixels painted`);
      }
      const alerts = doc.fleet.alerts.length;
      assertEqual(await page.locator('#alert-count').innerText(), `(${alerts.toLocaleString('en-US')})`, 'alert count');
      assertEqual(await page.locator('#alerts li.alert').count(), 50, 'alerts listed');
      await page.screenshot({ path: path.join(shots, 'dashboard-screenshot-10k.png'), fullPage: true });
    });

    await check('10,000 devices: top and bottom N by a metric, paging and the filter', async () => {
      await page.selectOption('#device-sort', 'temperature');
      await labelsAre(page, hottest.slice(0, PAGE));
      await page.click('#page-next');
      await labelsAre(page, hottest.slice(PAGE, 2 * PAGE));
      assertEqual(await page.locator('#page-info').innerText(), '201–400 of 10,000', 'pager on page 2');
      await page.check('#device-reverse');
      await labelsAre(page, coolest.slice(0, PAGE));
      assertEqual(await page.locator('#page-info').innerText(), '1–200 of 10,000', 'a new order starts at page 1');
      await page.uncheck('#device-reverse');
      await labelsAre(page, hottest.slice(0, PAGE));
      const needle = 'device-01';
      const matching = hottest.filter((id) => id.includes(needle));
      await page.fill('#device-filter', needle);
      await labelsAre(page, matching.slice(0, PAGE));
      assertEqual(await page.locator('#device-count').innerText(), `${matching.length} of 10,000 devices match`, 'count');
      const h = await chartData(page, 'chart-histogram');
      assertEqual(h.datasets[0].data.reduce((s, v) => s + v, 0), matching.length, 'histogram of the matching devices');
      await page.fill('#device-filter', '');
      await labelsAre(page, hottest.slice(0, PAGE));
    });

    await check('10,000 devices: the open page holds under 60 MB of JS heap', async () => {
      const cdp = await context.newCDPSession(page);
      await cdp.send('HeapProfiler.collectGarbage');
      const { usedSize, totalSize } = await cdp.send('Runtime.getHeapUsage');
      console.log(`      JS heap after GC: ${(usedSize / 1048576).toFixed(1)} MB used of ${(totalSize / 1048576).toFixed(1)} MB`);
      assert(usedSize < MAX_HEAP_BYTES, `${usedSize} bytes of JS heap`);
      await cdp.detach();
    });

    await check('10,000 devices: one device\'s change pushes under 300 KB and reaches the page', async () => {
      const stream = openEvents(args.url10k);
      try {
        const first = await stream.next('summary', 0, 5000);
        const changed = JSON.parse(original);
        const target = newest(changed).get(hottest[PAGE + 5]);
        target.avg_temperature = 99.5;
        const from = stream.events.length;
        const started = Date.now();
        writeAtomically(latest, JSON.stringify(changed));
        const delta = await stream.next('delta', from, 5000);
        const body = JSON.parse(delta.data);
        console.log(`      /events: summary on connect ${first.bytes} B; one device's change ${delta.bytes} B ` +
          `(latest.json is ${fs.statSync(latest).size} B)`);
        assert(delta.bytes < MAX_PUSH_BYTES, `the push is ${delta.bytes} bytes`);
        assertEqual([body.changed_total, body.removed_total], [1, 0], 'devices changed and removed');
        assertEqual(body.changed.map((c) => c.device_id), [target.device_id], 'the device pushed');
        // The page sorted hottest first: the device moves to the top.
        await labelsAre(page, [target.device_id, ...hottest.slice(0, PAGE).filter((id) => id !== target.device_id)].slice(0, PAGE),
          UPDATE_LIMIT_MS);
        console.log(`      the page shows it on top ${Date.now() - started} ms after the write`);
      } finally {
        stream.close();
        writeAtomically(latest, original);
      }
    });

    await check('no console errors on the 10,000-device page', async () => {
      assertEqual(errors, [], 'console errors');
    });
  } finally {
    fs.writeFileSync(latest, original);
    await page.close();
  }
}
