// Overview: requests, errors, tokens, spend and latency over the last hour, day
// or 30 days, per tenant, model or provider (GET /admin/v1/usage/series).

import {api, query} from './api.js';
import {OTHER, PALETTE, lineChart} from './chart.js';
import {field, fmtInt, fmtMs, fmtShort, fmtUsd, h, table} from './dom.js';

const RANGES = {
  hour: {label: 'Last hour', step: 'minute'},
  day: {label: 'Last day', step: 'hour'},
  month: {label: 'Last 30 days', step: 'day'},
};
const TOP = 8;

const sum = (values) => values.reduce((a, b) => a + b, 0);
const tokens = (x) => x.prompt_tokens.map((v, i) => v + x.completion_tokens[i]);
const latency = (x) => x.duration_ms.map((v, i) => (x.requests[i] ? v / x.requests[i] : NaN));

export async function overview(view, params) {
  const range = RANGES[params.get('range')] ? params.get('range') : 'day';
  const by = ['tenant', 'model', 'provider'].includes(params.get('by')) ? params.get('by') : 'tenant';
  const data = await api('usage/series' + query({step: RANGES[range].step, by, top: TOP}));
  const go = (r, b) => { location.hash = '#/overview?' + new URLSearchParams({range: r, by: b}); };
  const rangeSelect = h('select', {id: 'overview-range', onchange: (e) => go(e.target.value, by)},
    Object.entries(RANGES).map(([k, r]) => h('option', {value: k, selected: k === range}, r.label)));
  const bySelect = h('select', {id: 'overview-by', onchange: (e) => go(range, e.target.value)},
    ['tenant', 'model', 'provider'].map((k) => h('option', {value: k, selected: k === by}, k)));

  const groups = data.series.map((x, i) => ({name: x.group, color: PALETTE[i % PALETTE.length], x}));
  if (data.other) groups.push({name: `other (${data.other.groups})`, color: OTHER, x: data.other});
  const t = data.totals;
  const chart = (title, id, pick, format, unit, whole) => lineChart({
    title, id, times: data.times, step: data.step_s, format, whole, tick: (v) => fmtShort(v, unit),
    series: groups.map((g) => ({name: g.name, color: g.color, values: pick(g.x)})),
  });
  view.append(
    h('div', {class: 'toolbar'}, field('Range', rangeSelect), field('Per', bySelect)),
    h('div', {class: 'kpis', id: 'overview-kpis'},
      kpi('Requests', fmtInt(t.requests), 'kpi-requests'),
      kpi('Errors', `${fmtInt(t.errors)} (${t.requests ? ((100 * t.errors) / t.requests).toFixed(1) : '0.0'}%)`, 'kpi-errors'),
      kpi('Tokens', fmtInt(t.prompt_tokens + t.completion_tokens), 'kpi-tokens'),
      kpi('Spend', fmtUsd(t.cost_usd), 'kpi-spend'),
      kpi('Avg latency', t.requests ? fmtMs(t.duration_ms / t.requests) : '–', 'kpi-latency')),
    groups.length ? h('div', {class: 'charts'},
      chart('Requests', 'chart-requests', (x) => x.requests, fmtInt, '', true),
      chart('Spend (USD)', 'chart-spend', (x) => x.cost_usd, fmtUsd, '$'),
      chart('Tokens', 'chart-tokens', tokens, fmtInt, '', true),
      chart('Errors', 'chart-errors', (x) => x.errors, fmtInt, '', true),
      chart('Average latency', 'chart-latency', latency, fmtMs, 'ms'))
      : h('p', {class: 'empty'}, 'No traffic in this range.'),
    h('h2', {}, `Per ${by}`),
    table([by, 'requests', 'errors', 'tokens', 'spend', 'avg latency'],
      groups.map((g) => {
        const req = sum(g.x.requests);
        return [g.name, fmtInt(req), fmtInt(sum(g.x.errors)), fmtInt(sum(tokens(g.x))),
          fmtUsd(sum(g.x.cost_usd)), req ? fmtMs(sum(g.x.duration_ms) / req) : '–'];
      }), {id: 'overview-groups'}));
}

function kpi(label, value, id) {
  return h('div', {class: 'kpi', id}, h('span', {class: 'kpi-label'}, label), h('span', {class: 'kpi-value'}, value));
}
