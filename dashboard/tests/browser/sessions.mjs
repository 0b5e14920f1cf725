// The browser test's checks of a session document (sessions of varying lengths, with UDF columns): the header
// states the kind, every bar's tooltip and the UDF table give the session length, "longest session first" orders
// the bars by it, and the history draws it as a metric, each against values computed here from the fixture files.

import path from 'node:path';
import {
  assert, assertEqual, barTooltip, chartData, check, expectedPairs, historyMatches, lengthMs, newest, pairs, readJson,
  spanText, udfTableOf, waitForDevices, windowsOf,
} from './helpers.mjs';

export async function sessionChecks({ context, args }) {
  const docSessions = readJson(path.join(args.dataSessions, 'latest.json'));
  const historySessions = readJson(args.historySessions);
  const pageS = await context.newPage();
  const errorsS = [];
  pageS.on('console', (m) => m.type() === 'error' && errorsS.push(m.text()));
  pageS.on('pageerror', (e) => errorsS.push(`page error: ${e.message}`));
  const sessionIds = [...newest(docSessions).keys()];

  await check('sessions: the header states the kind and the bars are the newest sessions', async () => {
    assertEqual(docSessions.window, { kind: 'session', gap_ms: 5000 }, 'window of the fixture');
    const lengths = new Set(docSessions.records.map(lengthMs));
    assert(lengths.size > 2, `sessions of varying lengths: ${[...lengths]}`);
    assert([...lengths].every((l) => l >= 5000), 'a session lasts at least the gap');
    await pageS.goto(args.urlSessions);
    await waitForDevices(pageS, sessionIds.length);
    assertEqual(await pageS.locator('#window-kind').innerText(), 'sessions, gap 5 s', 'window kind');
    const c = await chartData(pageS, 'chart-temperature');
    assertEqual(pairs(c.labels, c.datasets[0].data), expectedPairs(docSessions, (r) => r.avg_temperature), 'temperature');
  });

  await check('sessions: a bar\'s tooltip and the device\'s UDF table give the session length', async () => {
    for (const id of sessionIds) {
      const r = newest(docSessions).get(id);
      const tooltip = await barTooltip(pageS, id);
      const line = tooltip.find((l) => l.startsWith('window '));
      const want = ` · session ${spanText(lengthMs(r))} ${r.final ? '(final)' : '(live, still open)'}`;
      assert(line?.endsWith(want), `tooltip of ${id}: ${JSON.stringify(tooltip)}, expected a line ending ${want}`);
    }
    const id = sessionIds.find((i) => windowsOf(docSessions, i).newest && !windowsOf(docSessions, i).newest.final);
    const { newest: n, lastFinal: f } = windowsOf(docSessions, id);
    assert(lengthMs(n) !== lengthMs(f), `the open and the final session of ${id} differ in length`);
    await pageS.selectOption('#device-select', id);
    await udfTableOf(pageS, id);
    for (const [which, r, state] of [['newest', n, 'live'], ['final', f, 'final']]) {
      const text = await pageS.locator(`#device-udfs th[data-window="${which}"] .window`).innerText();
      const want = ` · session ${spanText(lengthMs(r))} · ${state}`;
      assert(text.endsWith(want), `${which} heading of ${id}: ${text}, expected it to end with ${want}`);
    }
  });

  await check('sessions: "longest session first" orders the bars by session length', async () => {
    const options = await pageS.locator('#device-sort option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    assertEqual(options.map(([v]) => v), ['id', 'temperature', 'humidity', 'battery', 'session-length', 'udf:heat_index', 'udf:temperature_p90'], 'sorts');
    assertEqual(options[4][1], 'longest session first', 'label of the session sort');
    const want = [...newest(docSessions).values()]
      .sort((a, b) => lengthMs(b) - lengthMs(a) || (a.device_id < b.device_id ? -1 : 1))
      .map((r) => r.device_id);
    assert(JSON.stringify(want) !== JSON.stringify([...sessionIds].sort()), 'the session order differs from the id order');
    await pageS.selectOption('#device-sort', 'session-length');
    await pageS.waitForFunction(
      (ids) => JSON.stringify(window.Chart.getChart(document.getElementById('chart-temperature')).data.labels) === JSON.stringify(ids),
      want,
      { timeout: 3000 },
    );
    await pageS.selectOption('#device-sort', 'id');
  });

  await check('sessions: the history draws the session length as a metric', async () => {
    const id = sessionIds[1];
    await pageS.selectOption('#device-select', id);
    await historyMatches(pageS, historySessions[id]);
    const metrics = await pageS.locator('#history-metric option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    assertEqual(metrics, [['', 'temperature · humidity · battery'], ['session-length', 'session length'], ['heat_index', 'heat_index'], ['temperature_p90', 'temperature_p90']], 'history metrics');
    const want = historySessions[id].map((r) => ({ x: r.window_start, y: (r.window_end - r.window_start) / 1000 }));
    assert(new Set(want.map((p) => p.y)).size > 2, 'the history mixes session lengths');
    await pageS.selectOption('#history-metric', 'session-length');
    await pageS.waitForFunction(
      (expected) => {
        const c = window.Chart.getChart(document.getElementById('chart-history'));
        const ds = c.data.datasets.find((d) => d.label === 'session length (s)');
        return ds && JSON.stringify(ds.data) === JSON.stringify(expected);
      },
      want,
      { timeout: 3000 },
    );
    const drawn = await pageS.evaluate(() => {
      const c = window.Chart.getChart(document.getElementById('chart-history'));
      const i = c.data.datasets.findIndex((d) => d.label === 'session length (s)');
      return {
        visible: c.data.datasets.map((d, k) => (c.isDatasetVisible(k) ? d.label : null)).filter(Boolean),
        axis: c.options.scales[c.getDatasetMeta(i).yAxisID].title.text,
        title: c.config.options.plugins.tooltip.callbacks.title([{ dataIndex: 0 }]),
      };
    });
    assertEqual(drawn.visible, ['session length (s)'], 'datasets shown');
    assertEqual(drawn.axis, 's', 'axis title');
    const first = historySessions[id][0];
    assert(drawn.title.endsWith(` · session ${spanText(first.window_end - first.window_start)}`), `history tooltip title: ${drawn.title}`);
    assertEqual(decodeURIComponent(new URL(pageS.url()).hash), `#device=${id}&metric=session-length`, 'hash');
    await pageS.selectOption('#history-metric', '');
    await historyMatches(pageS, historySessions[id]);
    const shot = path.join(args.shots, 'dashboard-screenshot-sessions.png');
    await pageS.screenshot({ path: shot, fullPage: true });
    console.log(`      screenshot (sessions): ${shot}`);
  });

  await check('no console errors on the sessions page', async () => {
    assertEqual(errorsS, [], 'console errors');
  });
  await pageS.close();
}
