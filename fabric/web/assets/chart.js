// Charts over rackd's short history (GET /rackstack/v1/history), drawn
// with uPlot. Counters come raw and cumulative; rates are computed here.
import uPlot from './vendor/uplot/uPlot.esm.js';
import { h, bytes } from './ui.js';

// history fetches the series of one family, filtered by labels.
export async function history(session, family, labels = {}) {
  const q = new URLSearchParams({ family, ...labels });
  const body = await session.get('', '/rackstack/v1/history?' + q);
  return body.series || [];
}

// rate turns cumulative points into per-second rates between samples,
// dropping the step where a counter reset (a restarted guest).
export function rate(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const [t0, v0] = points[i - 1];
    const [t1, v1] = points[i];
    if (t1 > t0 && v1 >= v0) out.push([t1, (v1 - v0) / (t1 - t0)]);
  }
  return out;
}

// align merges several [[t, v]] lists on one time axis, as uPlot wants.
function align(lists) {
  const times = [...new Set(lists.flatMap(l => l.map(p => p[0])))].sort((a, b) => a - b);
  const idx = new Map(times.map((t, i) => [t, i]));
  const cols = lists.map(l => {
    const c = new Array(times.length).fill(null);
    for (const [t, v] of l) c[idx.get(t)] = v;
    return c;
  });
  return [times, ...cols];
}

const colors = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df'];

// chart draws lines ([{label, points}]) into a figure with a caption; the
// figure carries data-points, the number of points drawn, so a reader (or
// a test) can tell an empty chart from one with data.
export function chart(title, unit, lines) {
  const fig = h('figure', { class: 'chart' }, h('figcaption', {}, title + ' (' + unit + ')'));
  const n = lines.reduce((a, l) => a + l.points.length, 0);
  fig.dataset.points = String(n);
  if (!n) {
    fig.append(h('p', { class: 'empty' }, 'No samples yet.'));
    return fig;
  }
  // The canvas says nothing to a screen reader: the latest values do.
  const fmt = v => (unit.startsWith('bytes') ? bytes(v) + (unit === 'bytes/s' ? '/s' : '') : +v.toFixed(3) + ' ' + unit);
  fig.append(h('p', { class: 'sr-only' }, 'Latest: ' + lines.filter(l => l.points.length)
    .map(l => l.label + ' ' + fmt(l.points[l.points.length - 1][1])).join(', ')));
  const data = align(lines.map(l => l.points));
  const opts = {
    width: 520, height: 200,
    series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: colors[i % colors.length], width: 2 }))],
    axes: [{}, { size: 100, values: unit.startsWith('bytes') ? (u, vals) => vals.map(fmt) : undefined }],
  };
  new uPlot(opts, data, fig);
  return fig;
}
