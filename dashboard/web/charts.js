// Chart.js charts of the page: per-device bars of the newest window (temperature, humidity, battery range;
// live windows hatched and lighter; one page of devices at a time) for the built-in job, or per-group bars of the
// chosen numeric column for any other query; the distribution of a metric over the fleet; and the selected
// group's history of final windows (the built-in measures, or one metric picked from the list: a numeric column,
// or the session length when windows are sessions).

import { fmt1, fmt2, fmtInt, fmtNum, fmtTime, fmtUdf, fmtWindow, parseTime, shorten, udfNumber, windowMs } from './format.js';

const Chart = window.Chart;

/** Colours per measure: solid for final windows, a lighter tint for the hatch of live ones. */
export const PALETTE = {
  temperature: { solid: '#d9480f', tint: '#ffd8c2' },
  humidity: { solid: '#1971c2', tint: '#cfe3f7' },
  battery: { solid: '#2b8a3e', tint: '#cdebd3' },
  udf: { solid: '#7048e8', tint: '#e5dbff' },
};
const SELECTED_BORDER = '#212529';
/** Horizontal room per device before the charts start scrolling sideways. */
const PX_PER_DEVICE = 26;

/** Sizes a bar chart's `sizer` for `bars` bars: the panel's width, or wider (side-scrolling, with room per bar)
 *  when they do not fit, where rotated labels take room and the charts grow taller (`dense`, see style.css).
 *  Says whether the size changed, so that the caller resizes its charts. */
function fitBars(sizer, bars) {
  const dense = bars * PX_PER_DEVICE > sizer.parentElement.clientWidth;
  const width = dense ? `${bars * PX_PER_DEVICE}px` : '100%';
  const resized = sizer.style.width !== width || sizer.classList.contains('dense') !== dense;
  sizer.style.width = width;
  sizer.classList.toggle('dense', dense);
  return resized;
}

Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'system-ui';
Chart.defaults.font.size = 12;
Chart.defaults.color = '#495057';
Chart.defaults.borderColor = '#e9ecef';

/** Diagonal stripes of `solid` on `tint`: the mark of a live (still open) window. */
function hatch({ solid, tint }) {
  const size = 8;
  const c = document.createElement('canvas');
  c.width = size;
  c.height = size;
  const g = c.getContext('2d');
  g.fillStyle = tint;
  g.fillRect(0, 0, size, size);
  g.strokeStyle = solid;
  g.globalAlpha = 0.55;
  g.lineWidth = 1.5;
  g.beginPath();
  for (const o of [-size, 0, size]) {
    g.moveTo(o, size);
    g.lineTo(o + size, 0);
  }
  g.stroke();
  return g.createPattern(c, 'repeat');
}

/** The value of the session length in the sort and the history's metric lists (offered for session documents
 *  only). A hyphen cannot occur in a UDF's name (a function name), so it never collides with a column. */
export const SESSION_LENGTH = 'session-length';

/** Sort value of a numeric UDF column: `udf:<name>` (highest first; the server sorts, see /api/devices). */
export const UDF_SORT_PREFIX = 'udf:';

/** The newest window and the last final window among the records of one group (either may be undefined). */
export function groupWindows(records) {
  let newest;
  let lastFinal;
  for (const r of records ?? []) {
    const t = parseTime(r.window_start);
    const tn = newest ? parseTime(newest.window_start) : -Infinity;
    if (!newest || t > tn || (t === tn && r.final && !newest.final)) newest = r;
    if (r.final && (!lastFinal || t > parseTime(lastFinal.window_start))) lastFinal = r;
  }
  return { newest, lastFinal };
}

/** Sort and metric value of a column of any query: `column:<name>` (highest first; the server sorts). */
export const COLUMN_PREFIX = 'column:';

function barTooltip(rows, udfs, shown, measure) {
  return {
    callbacks: {
      title: (items) => rows[items[0].dataIndex]?.device_id ?? '',
      label: (item) => {
        const r = rows[item.dataIndex];
        if (!r) return '';
        if (measure === 'temperature') return `avg ${fmt2(r.avg_temperature, ' °C')} (σ ${fmt2(r.stddev_temperature)})`;
        if (measure === 'humidity') return `avg ${fmt2(r.avg_humidity, ' %')}`;
        return item.datasetIndex === 0 ? `battery ${fmt1(r.min_battery, ' %')} – ${fmt1(r.max_battery, ' %')}` : null;
      },
      afterLabel: (item) => {
        const r = rows[item.dataIndex];
        if (!r || item.datasetIndex > 0) return '';
        return [
          `window ${fmtWindow(r.window_start, r.window_end, shown.sessions)}${r.final ? ' (final)' : ' (live, still open)'}`,
          `${fmtInt(r.count)} events · ${fmtInt(r.warn_count)} warn · ${fmtInt(r.error_count)} error`,
          ...udfs.map((u) => `${u.name} ${fmtUdf(r[u.name])}`),
        ];
      },
    },
  };
}

/** The three device charts, sharing one horizontal scroll area. */
export class DeviceCharts {
  constructor({ temperature, humidity, battery, sizer, onSelect }) {
    this.sizer = sizer;
    this.onSelect = onSelect;
    this.rows = [];
    /** The document's UDF columns, listed in the tooltips. */
    this.udfs = [];
    /** Whether the windows are sessions: the tooltips then give each one's length. */
    this.shown = { sessions: false };
    this.patterns = Object.fromEntries(Object.entries(PALETTE).map(([k, p]) => [k, hatch(p)]));
    this.charts = {
      temperature: this.#make(temperature, 'temperature', 'avg temperature (°C)', {}),
      humidity: this.#make(humidity, 'humidity', 'avg humidity (%)', { min: 0, max: 100 }),
      battery: this.#make(battery, 'battery', 'min battery (%)', { min: 0, max: 100 }),
    };
  }

  #make(canvas, measure, label, yRange) {
    const self = this;
    return new Chart(canvas, {
      type: 'bar',
      data: {
        labels: [],
        datasets: [
          { label, data: [], borderWidth: 1.5, borderSkipped: false, maxBarThickness: 48 },
          // Battery only: the span from min to max battery, drawn on top of the 0..min bar.
          ...(measure === 'battery'
            ? [{ label: 'max battery (%)', data: [], borderWidth: 1.5, borderSkipped: false, maxBarThickness: 48, backgroundColor: 'rgba(43, 138, 62, 0.18)' }]
            : []),
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: 250 },
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { display: false }, tooltip: barTooltip(self.rows, self.udfs, self.shown, measure) },
        scales: {
          x: {
            stacked: measure === 'battery',
            grid: { display: false },
            ticks: {
              autoSkip: false,
              maxRotation: 90,
              minRotation: 0,
              callback: (v, i) => shorten(self.rows[i]?.device_id ?? '', self.rows.length > 30 ? 13 : 18),
            },
          },
          y: { ...yRange, beginAtZero: measure !== 'temperature', grace: measure === 'temperature' ? '8%' : 0, ticks: { maxTicksLimit: 6 } },
        },
        onClick: (event, _elements, chart) => {
          const hit = chart.getElementsAtEventForMode(event, 'index', { intersect: false }, true);
          if (hit.length) self.onSelect(self.rows[hit[0].index].device_id);
        },
        onHover: (event, elements) => {
          event.native.target.style.cursor = elements.length ? 'pointer' : 'default';
        },
      },
    });
  }

  /** Redraws the bars for `rows`, outlining the selected device; the tooltips list the `udfs` columns and, with
   *  `sessions`, the length of each session. */
  update(rows, selected, udfs = [], sessions = false) {
    // The tooltip and tick callbacks read `this.rows`, `this.udfs` and `this.shown`; replace their contents, not
    // the objects.
    this.rows.splice(0, this.rows.length, ...rows);
    this.udfs.splice(0, this.udfs.length, ...udfs);
    this.shown.sessions = sessions;
    const resized = fitBars(this.sizer, rows.length);
    const labels = rows.map((r) => r.device_id);
    const values = {
      temperature: rows.map((r) => r.avg_temperature),
      humidity: rows.map((r) => r.avg_humidity),
      battery: rows.map((r) => r.min_battery),
    };
    for (const [measure, chart] of Object.entries(this.charts)) {
      const [ds, range] = chart.data.datasets;
      const solid = PALETTE[measure].solid;
      const border = rows.map((r) => (r.device_id === selected ? SELECTED_BORDER : solid));
      const borderWidth = rows.map((r) => (r.device_id === selected ? 3 : 1.5));
      if (measure === 'temperature') {
        // The temperature axis does not start at zero; leave room below the coolest bar so that it stays visible.
        const finite = values.temperature.filter(Number.isFinite);
        const lo = Math.min(...finite);
        const hi = Math.max(...finite);
        chart.options.scales.y.min = finite.length ? Math.floor(lo - Math.max(1, (hi - lo) * 0.3)) : undefined;
      }
      // Take the new size now rather than on the next resize observation, so this update lays out once.
      if (resized) chart.resize();
      chart.data.labels = labels;
      ds.data = values[measure];
      ds.backgroundColor = rows.map((r) => (r.final ? solid : this.patterns[measure]));
      ds.borderColor = border;
      ds.borderWidth = borderWidth;
      if (range) {
        range.data = rows.map((r) => [r.min_battery, r.max_battery]);
        range.borderColor = border;
        range.borderWidth = borderWidth;
      }
      chart.update();
    }
  }
}

/** The bars of one numeric column of any query, one per group of the page (live windows hatched, the selected
 *  group outlined); clicking a bar selects its group. */
export class GroupChart {
  constructor({ canvas, sizer, onSelect }) {
    this.sizer = sizer;
    this.onSelect = onSelect;
    this.rows = [];
    this.labels = [];
    /** The column drawn, and whether the windows are sessions (the tooltip then gives each one's length). */
    this.shown = { column: '', sessions: false };
    this.pattern = hatch(PALETTE.udf);
    const self = this;
    this.chart = new Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: '', data: [], borderWidth: 1.5, borderSkipped: false, maxBarThickness: 48 }] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: 250 },
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => self.labels[items[0].dataIndex] ?? '',
              label: (item) => `${self.shown.column} ${fmtUdf(self.rows[item.dataIndex]?.[self.shown.column])}`,
              afterLabel: (item) => {
                const r = self.rows[item.dataIndex];
                if (!r) return '';
                return `window ${fmtWindow(r.window_start, r.window_end, self.shown.sessions)}${r.final ? ' (final)' : ' (live, still open)'}`;
              },
            },
          },
        },
        scales: {
          x: {
            grid: { display: false },
            ticks: {
              autoSkip: false,
              maxRotation: 90,
              minRotation: 0,
              callback: (v, i) => shorten(self.labels[i] ?? '', self.labels.length > 30 ? 13 : 18),
            },
          },
          y: { ticks: { maxTicksLimit: 6 }, title: { display: true, text: '' } },
        },
        onClick: (event, _elements, chart) => {
          const hit = chart.getElementsAtEventForMode(event, 'index', { intersect: false }, true);
          if (hit.length) self.onSelect(self.labels[hit[0].index]);
        },
        onHover: (event, elements) => {
          event.native.target.style.cursor = elements.length ? 'pointer' : 'default';
        },
      },
    });
  }

  /** Redraws the bars of `column` for `rows` (newest windows) of the groups `labels`, outlining `selected`. */
  update(rows, labels, column, selected, sessions = false) {
    this.rows.splice(0, this.rows.length, ...rows);
    this.labels.splice(0, this.labels.length, ...labels);
    this.shown.column = column;
    this.shown.sessions = sessions;
    const resized = fitBars(this.sizer, rows.length);
    if (resized) this.chart.resize();
    const values = rows.map((r) => udfNumber(r[column]));
    // Bars start at zero unless every value is far from it: then leave room below the lowest bar, as the
    // temperature chart does.
    const finite = values.filter(Number.isFinite);
    const lo = Math.min(...finite);
    const hi = Math.max(...finite);
    const pad = Math.max((hi - lo) * 0.3, Math.abs(hi) * 0.01);
    const y = this.chart.options.scales.y;
    y.min = finite.length && lo > 0 && lo - pad > 0 && lo > (hi - lo) ? lo - pad : undefined;
    y.title.text = column;
    const ds = this.chart.data.datasets[0];
    ds.label = column;
    this.chart.data.labels = [...labels];
    ds.data = values;
    ds.backgroundColor = rows.map((r) => (r.final ? PALETTE.udf.solid : this.pattern));
    ds.borderColor = labels.map((l) => (l === selected ? SELECTED_BORDER : PALETTE.udf.solid));
    ds.borderWidth = labels.map((l) => (l === selected ? 3 : 1.5));
    this.chart.update();
  }
}

/** The colour of a metric's distribution: the measure's own, the UDF colour for the others. */
function metricColour(metric) {
  return (PALETTE[metric] ?? PALETTE.udf).solid;
}

/** The distribution of the sort's metric over every device matching the filter (the `histogram` of
 *  /api/devices: bins of a round width, counts of devices). */
export class HistogramChart {
  constructor(canvas) {
    this.bins = [];
    /** What the bars count: devices, or groups of any other query. */
    this.counted = { noun: 'device' };
    const bins = this.bins;
    const counted = this.counted;
    this.chart = new Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'devices', data: [], backgroundColor: PALETTE.temperature.solid, categoryPercentage: 1, barPercentage: 0.92 }] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => {
                const b = bins[items[0]?.dataIndex];
                return b ? (b.lo === b.hi ? fmtNum(b.lo) : `${fmtNum(b.lo)} to ${fmtNum(b.hi)}`) : '';
              },
              label: (item) => `${fmtInt(item.raw)} ${counted.noun}${item.raw === 1 ? '' : 's'}`,
            },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, ticks: { precision: 0, maxTicksLimit: 6 }, title: { display: true, text: 'devices' } },
        },
      },
    });
  }

  /** Draws `histogram` ({metric, bins: [{lo, hi, count}]}, or nothing); the axis is titled `what`, and the bars
   *  count `noun`s. */
  update(histogram, what, noun = 'device') {
    this.counted.noun = noun;
    this.chart.options.scales.y.title.text = `${noun}s`;
    this.bins.splice(0, this.bins.length, ...(histogram?.bins ?? []));
    const ds = this.chart.data.datasets[0];
    this.chart.data.labels = this.bins.map((b) => fmtNum(b.lo));
    ds.data = this.bins.map((b) => b.count);
    const metric = histogram?.metric ?? 'temperature';
    ds.backgroundColor = metricColour(metric.startsWith(UDF_SORT_PREFIX) || metric.startsWith(COLUMN_PREFIX) ? 'udf' : metric);
    this.chart.options.scales.x.title = { display: Boolean(what), text: what ?? '' };
    this.chart.update();
  }
}

/** Index of the dataset that draws a metric picked from the list (after the five built-in ones). */
const METRIC_DATASET = 5;

/** How the history draws a picked metric: its legend label, its axis title and its value in a row. */
function pickedMetric(metric) {
  if (metric === SESSION_LENGTH) {
    return { label: 'session length (s)', axis: 's', value: (r) => windowMs(r) / 1000 };
  }
  return { label: metric, axis: metric, value: (r) => udfNumber(r[metric]) };
}

/** The selected device's final windows: temperature with a ±σ band, humidity and battery range; or, with a
 *  metric picked from the list (a UDF column, the session length), that metric alone (null values leave gaps). */
export class HistoryChart {
  constructor(canvas) {
    this.rows = [];
    /** The metric drawn instead of the built-in measures, or '' for those. */
    this.metric = '';
    /** Whether the windows are sessions (the tooltip then gives each one's length) and whether the rows are the
     *  built-in job's (the tooltip then gives their σ, counts and statuses). */
    this.shown = { sessions: false, seed: true };
    const rows = this.rows;
    const shown = this.shown;
    const t = PALETTE.temperature;
    const u = PALETTE.udf;
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: [
          { label: 'avg temperature (°C)', data: [], borderColor: t.solid, backgroundColor: t.solid, yAxisID: 'y', tension: 0.2 },
          { label: 'avg humidity (%)', data: [], borderColor: PALETTE.humidity.solid, backgroundColor: PALETTE.humidity.solid, yAxisID: 'y1', tension: 0.2 },
          { label: 'min battery (%)', data: [], borderColor: PALETTE.battery.solid, backgroundColor: PALETTE.battery.solid, yAxisID: 'y1', borderDash: [5, 3], tension: 0.2 },
          { label: 'temperature +σ', data: [], borderWidth: 0, pointRadius: 0, yAxisID: 'y', fill: false, tension: 0.2 },
          { label: 'temperature ±σ', data: [], borderWidth: 0, pointRadius: 0, yAxisID: 'y', fill: '-1', backgroundColor: 'rgba(217, 72, 15, 0.14)', tension: 0.2 },
          { label: '', data: [], borderColor: u.solid, backgroundColor: u.solid, yAxisID: 'y2', tension: 0.2, hidden: true },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: {
            position: 'bottom',
            labels: {
              usePointStyle: true,
              filter: (item, data) => item.text !== 'temperature +σ' && !data.datasets[item.datasetIndex].hidden,
            },
          },
          tooltip: {
            filter: (item) => item.datasetIndex < 3 || item.datasetIndex === METRIC_DATASET,
            callbacks: {
              title: (items) => {
                const r = rows[items[0]?.dataIndex];
                return r ? `window ${fmtWindow(r.window_start, r.window_end, shown.sessions)}` : '';
              },
              footer: (items) => {
                const r = rows[items[0]?.dataIndex];
                if (!r || !shown.seed) return '';
                return `σ ${fmt2(r.stddev_temperature)} °C · ${fmtInt(r.count)} events · ${fmtInt(r.warn_count)} warn · ${fmtInt(r.error_count)} error`;
              },
            },
          },
        },
        scales: {
          x: {
            type: 'linear',
            ticks: { maxTicksLimit: 8, callback: (v) => fmtTime(v) },
            grid: { display: false },
          },
          // 'auto': an axis shows while one of its datasets does, so a UDF metric replaces both measure axes.
          y: { position: 'left', display: 'auto', title: { display: true, text: '°C' } },
          y1: { position: 'right', display: 'auto', min: 0, max: 100, title: { display: true, text: '%' }, grid: { drawOnChartArea: false } },
          y2: { position: 'left', display: 'auto', grace: '5%', title: { display: true, text: '' } },
        },
      },
    });
  }

  /** Draws `rows` (final windows, oldest first) for `metric` (a numeric column's name, `SESSION_LENGTH`, or ''
   *  for the built-in measures); with `sessions`, the tooltip gives each session's length; `seed` says the rows
   *  are the built-in job's. Points are drawn only while they stay few. */
  update(rows, metric = '', sessions = false, seed = true) {
    this.rows.splice(0, this.rows.length, ...rows);
    this.shown.sessions = sessions;
    this.shown.seed = seed;
    const x = rows.map((r) => parseTime(r.window_start));
    const series = (f) => rows.map((r, i) => ({ x: x[i], y: f(r) }));
    const ds = this.chart.data.datasets;
    ds[0].data = series((r) => r.avg_temperature);
    ds[1].data = series((r) => r.avg_humidity);
    ds[2].data = series((r) => r.min_battery);
    ds[3].data = series((r) => r.avg_temperature + r.stddev_temperature);
    ds[4].data = series((r) => r.avg_temperature - r.stddev_temperature);
    const picked = pickedMetric(metric);
    ds[METRIC_DATASET].data = metric ? series(picked.value) : [];
    if (metric !== this.metric) {
      this.metric = metric;
      ds.forEach((d, i) => {
        d.hidden = i === METRIC_DATASET ? !metric : Boolean(metric);
        // Forget legend clicks: they would otherwise outlast the switch (Chart.js keeps them per dataset).
        this.chart.getDatasetMeta(i).hidden = null;
      });
      ds[METRIC_DATASET].label = picked.label;
      this.chart.options.scales.y2.title.text = picked.axis;
    }
    const radius = rows.length > 120 ? 0 : 2.5;
    for (const d of [...ds.slice(0, 3), ds[METRIC_DATASET]]) d.pointRadius = radius;
    this.chart.update();
  }
}
