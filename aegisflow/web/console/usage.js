// Usage explorer: the ledger filtered and grouped, and its CSV
// (GET /admin/v1/usage).

import {api, query} from './api.js';
import {clear, field, fmtInt, fmtMs, fmtUsd, h, notice, pager, table} from './dom.js';

const PAGE = 100;
const FILTERS = ['tenant', 'key', 'model', 'provider', 'from', 'to'];
const GROUPS = ['hour', 'day', 'tenant', 'key', 'model', 'provider'];

export async function usage(view, params) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const groupBy = (params.get('group_by') || 'tenant,model').split(',').filter((g) => GROUPS.includes(g));
  const asked = {...filters, group_by: groupBy.join(',')};
  const data = await api('usage' + query(asked));
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const inputs = Object.fromEntries(FILTERS.map((k) => [k, h('input', {name: k, id: 'usage-' + k, value: filters[k]})]));
  const boxes = GROUPS.map((g) => h('label', {class: 'check'},
    h('input', {type: 'checkbox', name: 'group_by', value: g, checked: groupBy.includes(g)}), ' ', g));
  const form = h('form', {class: 'toolbar', id: 'usage-filters'},
    FILTERS.map((k) => field(k, inputs[k])),
    h('fieldset', {class: 'groups'}, h('legend', {}, 'group by'), boxes),
    h('button', {type: 'submit', class: 'primary'}, 'Run'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = Object.fromEntries(FILTERS.map((k) => [k, inputs[k].value.trim()]).filter(([, v]) => v));
    next.group_by = boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value).join(',');
    location.hash = '#/usage?' + new URLSearchParams(next);
  });
  const status = h('div', {});
  const download = h('button', {type: 'button', id: 'usage-csv'}, 'Download CSV');
  download.addEventListener('click', async () => {
    clear(status);
    try {
      const resp = await api('usage' + query({...asked, format: 'csv'}), {raw: true});
      const url = URL.createObjectURL(await resp.blob());
      const a = h('a', {href: url, download: 'aegisflow-usage.csv'});
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      status.append(notice(err.message));
    }
  });
  const go = (o) => { location.hash = '#/usage?' + new URLSearchParams({...asked, offset: o}); };
  const t = data.totals;
  view.append(form, h('div', {class: 'toolbar'}, download), status,
    table([...groupBy, 'requests', 'errors', 'prompt', 'completion', 'cached', 'spend', 'avg latency'],
      data.rows.slice(offset, offset + PAGE).map((r) => [
        ...groupBy.map((g) => (g === 'hour' || g === 'day' ? String(r[g]) : h('span', {class: 'mono'}, r[g]))),
        fmtInt(r.requests), fmtInt(r.errors), fmtInt(r.prompt_tokens), fmtInt(r.completion_tokens),
        fmtInt(r.cached_tokens), fmtUsd(r.cost_usd), r.requests ? fmtMs(r.duration_ms / r.requests) : '–',
      ]), {id: 'usage-table'}),
    pager(offset, PAGE, data.rows.length, go),
    h('p', {class: 'hint', id: 'usage-totals'},
      `Totals: ${fmtInt(t.requests)} requests, ${fmtInt(t.errors)} errors, `
      + `${fmtInt(t.prompt_tokens + t.completion_tokens)} tokens, ${fmtUsd(t.cost_usd)}.`));
}
