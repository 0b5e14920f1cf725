// The browser test's checks of a query that is not the seed's (the contract's plant sensors grouped by site and
// sensor_id, `--query site-and-sensor`): the header shows the query, the metric list offers exactly the numeric
// value columns, the bars, the histogram and the selected group's history draw the chosen one, the table shows
// every column of the page's groups, the fleet panel says why it has no views, each against values computed
// here from the fixture files.

import path from 'node:path';
import { assert, assertEqual, chartData, check, readJson } from './helpers.mjs';

const NUMERIC = new Set(['BIGINT', 'DOUBLE']);

/** The label of a record: its key values' texts joined by ` / `. */
function labelOf(doc, r) {
  return doc.columns.filter((c) => c.role === 'key').map((c) => String(r[c.name])).join(' / ');
}

/** The newest record of every group, by label (a later start wins; a final record wins a tie). */
function newestByLabel(doc) {
  const m = new Map();
  for (const r of doc.records) {
    const label = labelOf(doc, r);
    const cur = m.get(label);
    const t = Date.parse(r.window_start);
    if (!cur || t > Date.parse(cur.window_start) || (t === Date.parse(cur.window_start) && r.final && !cur.final)) {
      m.set(label, r);
    }
  }
  return m;
}

/** The labels in the server's order by key: by each key's text, then the next key's. */
function byKey(doc, labels) {
  const newest = newestByLabel(doc);
  const keys = doc.columns.filter((c) => c.role === 'key').map((c) => c.name);
  return [...labels].sort((a, b) => {
    for (const k of keys) {
      const x = newest.get(a)[k];
      const y = newest.get(b)[k];
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  });
}

async function metricBarsAre(page, labels, values, timeout = 5000) {
  await page.waitForFunction(
    ([l, v]) => {
      const c = window.Chart?.getChart(document.getElementById('chart-metric'));
      return c && JSON.stringify(c.data.labels) === JSON.stringify(l) && JSON.stringify(c.data.datasets[0].data) === JSON.stringify(v);
    },
    [labels, values],
    { timeout },
  );
}

export async function queryChecks({ context, args, shots }) {
  const doc = readJson(path.join(args.dataQuery, 'latest.json'));
  const history = readJson(args.historyQuery);
  const newest = newestByLabel(doc);
  const labels = byKey(doc, newest.keys());
  const numeric = doc.columns.filter((c) => c.role === 'value' && NUMERIC.has(c.type)).map((c) => c.name);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  const values = (column) => labels.map((l) => {
    const v = newest.get(l)[column];
    return typeof v === 'number' ? v : null;
  });

  try {
    await check('any query: the header shows the query, collapsed, and opens to its whole text', async () => {
      assertEqual(doc.query.builtin, false, 'the fixture is not the built-in job');
      await page.goto(args.urlQuery);
      await metricBarsAre(page, labels, values(numeric[0]), 10_000);
      assert(await page.locator('#query').isVisible(), 'the query is shown');
      assertEqual(await page.locator('#query .query-line').innerText(), 'SELECT site, sensor_id, window_start, window_end, COUNT(*) AS n, AVG(pressure) AS avg_pressure,', 'the SELECT line');
      assert(await page.locator('#query-text').isHidden(), 'collapsed');
      await page.click('#query summary');
      assertEqual(await page.locator('#query-text').textContent(), doc.query.sql.trim(), 'the query text');
      await page.click('#query summary');
      assertEqual(await page.locator('#groups-sub').innerText(), 'newest window · by site / sensor_id', 'the keys');
    });

    await check('any query: the metric list offers the numeric value columns; the built-in views step aside', async () => {
      assertEqual(numeric, ['n', 'avg_pressure', 'max_co2', 'vibration_sd'], 'numeric columns of the fixture');
      const offered = await page.locator('#metric option').evaluateAll((os) => os.map((o) => o.value));
      assertEqual(offered, numeric, 'metric list');
      assertEqual(await page.locator('#metric').inputValue(), 'n', 'the first numeric column is drawn first');
      const sorts = await page.locator('#device-sort option:not([disabled])').evaluateAll((os) => os.map((o) => o.value));
      assertEqual(sorts, ['id', ...numeric.map((n) => `column:${n}`)], 'sorts');
      for (const id of ['chart-temperature', 'chart-humidity', 'chart-battery']) {
        assert(await page.locator(`#${id}`).isHidden(), `${id} is hidden`);
      }
      assert(await page.locator('#history-metric').isHidden(), 'the built-in history metric list is hidden');
      assertEqual(await page.locator('#fleet-unavailable').innerText(), `No fleet views or alerts for this query: ${doc.fleet.unavailable}.`, 'why no fleet views');
      assert(await page.locator('#fleet-table').isHidden() && await page.locator('#alerts').isHidden(), 'no fleet table or alerts');
      assertEqual(await page.locator('#device-count').innerText(),
        `${labels.length} groups · ${[...newest.values()].filter((r) => !r.final).length} live, ${[...newest.values()].filter((r) => r.final).length} final`, 'count');
    });

    await check('any query: the bars and the histogram draw the chosen column', async () => {
      await page.selectOption('#metric', 'avg_pressure');
      const want = values('avg_pressure');
      assert(want.some((v) => v === null) && want.some((v) => v !== null), 'the fixture mixes values and nulls');
      await metricBarsAre(page, labels, want);
      const c = await chartData(page, 'chart-metric');
      const live = labels.map((l) => !newest.get(l).final);
      assertEqual(c.datasets[0].hatched, live, 'live windows hatched');
      await page.waitForFunction(
        (n) => window.Chart.getChart(document.getElementById('chart-histogram')).data.datasets[0].data.reduce((s, v) => s + v, 0) === n,
        want.filter((v) => v !== null).length,
        { timeout: 3000 },
      );
      const title = await page.locator('#histogram-title').innerText();
      const missing = want.filter((v) => v === null).length;
      assertEqual(title, `Distribution of avg_pressure over ${labels.length - missing} groups (${missing} without a value)`, 'histogram title');
      assertEqual(decodeURIComponent(new URL(page.url()).hash), '', 'no selection yet');
    });

    await check('any query: the table shows every column of the page\'s groups', async () => {
      const head = await page.locator('#group-table thead th').allInnerTexts();
      assertEqual(head, [...doc.columns.map((c) => c.name), 'final'], 'columns');
      const shown = await page.locator('#group-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({
        label: tr.dataset.label,
        values: [...tr.children].map((td) => JSON.parse(td.dataset.value)),
      })));
      assertEqual(shown.map((r) => r.label), labels, 'rows');
      for (const r of shown) {
        const rec = newest.get(r.label);
        assertEqual(r.values, [...doc.columns.map((c) => rec[c.name] ?? null), Boolean(rec.final)], `row ${r.label}`);
      }
      const nulls = await page.locator('#group-table td[data-null]').count();
      assert(nulls > 0, 'nulls are shown as such');
    });

    await check('any query: a group picked from the bars shows its columns and draws the chosen column\'s history', async () => {
      const label = labels[3];
      const box = await page.evaluate((l) => {
        const canvas = document.getElementById('chart-metric');
        const chart = window.Chart.getChart(canvas);
        const i = chart.data.labels.indexOf(l);
        canvas.scrollIntoView({ block: 'center' });
        const bar = chart.getDatasetMeta(0).data[i];
        const r = canvas.getBoundingClientRect();
        return { x: r.left + bar.x, y: r.top + chart.chartArea.bottom - 5 };
      }, label);
      await page.mouse.click(box.x, box.y);
      await page.waitForFunction((l) => document.getElementById('history-device').textContent === l, label, { timeout: 3000 });
      assertEqual(decodeURIComponent(new URL(page.url()).hash), `#group=${label}&metric=avg_pressure`, 'hash');
      const want = history[label].map((r) => ({ x: Date.parse(r.window_start), y: typeof r.avg_pressure === 'number' ? r.avg_pressure : null }));
      await page.waitForFunction(
        (expected) => {
          const c = window.Chart.getChart(document.getElementById('chart-history'));
          const ds = c.data.datasets.find((d) => d.label === 'avg_pressure');
          return ds && JSON.stringify(ds.data) === JSON.stringify(expected);
        },
        want,
        { timeout: 5000 },
      );
      const legend = await page.evaluate(() => window.Chart.getChart(document.getElementById('chart-history')).legend.legendItems.map((l) => l.text));
      assertEqual(legend, ['avg_pressure'], 'the history draws the chosen column alone');
      await page.waitForFunction((l) => document.getElementById('device-udfs').dataset.device === l, label, { timeout: 3000 });
      const table = await page.locator('#device-udfs tbody tr').evaluateAll((trs) => trs.map((tr) => [
        tr.dataset.udf, JSON.parse(tr.querySelector('td[data-window="newest"]').dataset.value),
      ]));
      const rec = newest.get(label);
      assertEqual(table, doc.columns.filter((c) => c.role === 'value').map((c) => [c.name, rec[c.name] ?? null]), 'the group\'s columns');
      await page.selectOption('#metric', 'max_co2');
      const co2 = history[label].map((r) => ({ x: Date.parse(r.window_start), y: typeof r.max_co2 === 'number' ? r.max_co2 : null }));
      await page.waitForFunction(
        (expected) => {
          const c = window.Chart.getChart(document.getElementById('chart-history'));
          const ds = c.data.datasets.find((d) => d.label === 'max_co2');
          return ds && JSON.stringify(ds.data) === JSON.stringify(expected);
        },
        co2,
        { timeout: 3000 },
      );
      await page.screenshot({ path: path.join(shots, 'dashboard-screenshot-query.png'), fullPage: true });
      console.log(`      screenshot (any query): ${path.join(shots, 'dashboard-screenshot-query.png')}`);
    });

    await check('any query: sorting by a numeric column orders the bars by its newest value', async () => {
      await page.selectOption('#device-sort', 'column:vibration_sd');
      const v = (l) => newest.get(l).vibration_sd;
      const want = [...labels].sort((a, b) => {
        const [x, y] = [v(a), v(b)];
        if (typeof x !== 'number' || typeof y !== 'number') return (typeof y === 'number') - (typeof x === 'number') || labels.indexOf(a) - labels.indexOf(b);
        return y - x || labels.indexOf(a) - labels.indexOf(b);
      });
      await page.waitForFunction(
        (ids) => JSON.stringify(window.Chart.getChart(document.getElementById('chart-metric')).data.labels) === JSON.stringify(ids),
        want,
        { timeout: 3000 },
      );
    });

    await check('no console errors on the page of another query', async () => {
      assertEqual(errors, [], 'console errors');
    });
  } finally {
    await page.close();
  }
}
