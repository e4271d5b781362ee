// Line charts drawn as SVG by hand: no library, no request anywhere.

import {h, s} from './dom.js';

export const PALETTE = [
  '#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed',
  '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4f46e5',
];
export const OTHER = '#9ca3af';

const W = 640;
const H = 200;
const PAD = {left: 64, right: 12, top: 10, bottom: 24};

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(t, step) {
  const iso = new Date(t * 1000).toISOString();
  if (step >= 86400) return iso.slice(5, 10);
  return iso.slice(11, 16);
}

// lineChart({title, times, step, series: [{name, values, color}], format, tick,
// whole, id}): `format` for values, `tick` (default `format`) for the axis; `whole`
// for counts, so the axis never shows a fraction of a request
export function lineChart({title, times, step, series, format, tick, whole, id}) {
  const n = times.length;
  const highest = Math.max(0, ...series.flatMap((x) => x.values.filter(Number.isFinite)));
  const top = whole ? Math.max(4, niceMax(highest)) : niceMax(highest);
  const tickText = tick || format;
  const x = (i) => PAD.left + (n <= 1 ? 0 : (i * (W - PAD.left - PAD.right)) / (n - 1));
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title});
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    svg.append(
      s('line', {x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid'}),
      s('text', {x: PAD.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end'}, tickText(v)));
  }
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    svg.append(s('text', {x: x(i), y: H - 6, class: 'tick', 'text-anchor': 'middle'}, timeLabel(times[i], step)));
  }
  for (const line of series) {
    const points = line.values
      .map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null))
      .filter(Boolean)
      .join(' ');
    svg.append(s('polyline', {points, fill: 'none', stroke: line.color, 'stroke-width': 1.6},
      s('title', {}, line.name)));
    // a value with no neighbour draws no line: a dot shows it
    const v = line.values;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(v[i]) && !Number.isFinite(v[i - 1]) && !Number.isFinite(v[i + 1])) {
        svg.append(s('circle', {cx: x(i), cy: y(v[i]), r: 2.5, fill: line.color}));
      }
    }
  }
  // one hover band per step, its title the values at that time
  const band = n <= 1 ? W - PAD.left - PAD.right : (W - PAD.left - PAD.right) / (n - 1);
  for (let i = 0; i < n; i++) {
    const lines = [new Date(times[i] * 1000).toISOString().slice(0, 16).replace('T', ' ') + 'Z']
      .concat(series.map((line) => `${line.name}: ${format(line.values[i] || 0)}`));
    svg.append(s('rect', {x: x(i) - band / 2, y: PAD.top, width: band, height: H - PAD.top - PAD.bottom, class: 'hover'},
      s('title', {}, lines.join('\n'))));
  }
  return h('figure', {class: 'chart-box', id},
    h('figcaption', {}, title),
    svg,
    h('ul', {class: 'legend'}, series.map((line) =>
      h('li', {}, s('svg', {width: 10, height: 10, class: 'swatch'}, s('rect', {width: 10, height: 10, fill: line.color})), ' ', line.name))));
}

// A bar of `spent` against `limit`, with the warning line at `warnAt` (0..1).
export function budgetBar(spent, limit, warnAt) {
  const share = limit > 0 ? Math.min(1, spent / limit) : 0;
  const state = share >= 1 ? 'over' : warnAt && share >= warnAt ? 'warn' : 'ok';
  const svg = s('svg', {viewBox: '0 0 200 14', class: 'budget-bar ' + state, role: 'img',
    'aria-label': `${(share * 100).toFixed(1)}% of the budget spent`},
  s('rect', {x: 0, y: 0, width: 200, height: 14, class: 'track'}),
  s('rect', {x: 0, y: 0, width: (200 * share).toFixed(1), height: 14, class: 'fill'}));
  if (warnAt) svg.append(s('line', {x1: 200 * warnAt, x2: 200 * warnAt, y1: 0, y2: 14, class: 'warn-line'},
    s('title', {}, `warning at ${Math.round(warnAt * 100)}%`)));
  return svg;
}
