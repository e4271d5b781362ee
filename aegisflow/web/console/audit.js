// Audit log: admin actions and policy decisions, newest first, filterable
// (GET /admin/v1/audit).

import {api, query} from './api.js';
import {field, fmtNs, h, pager, table} from './dom.js';

const PAGE = 100;
const FILTERS = ['tenant', 'action', 'from', 'to'];

export async function audit(view, params) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const data = await api('audit' + query({...filters, limit: 10000}));
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const inputs = Object.fromEntries(FILTERS.map((k) => [k, h('input', {
    name: k, id: 'audit-' + k, value: filters[k],
    placeholder: k === 'action' ? 'key.create' : k === 'tenant' ? 'tenant id' : '2026-11-01 or unix seconds',
  })]));
  const form = h('form', {class: 'toolbar', id: 'audit-filters'},
    FILTERS.map((k) => field(k, inputs[k])),
    h('button', {type: 'submit', class: 'primary'}, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = Object.fromEntries(FILTERS.map((k) => [k, inputs[k].value.trim()]).filter(([, v]) => v));
    location.hash = '#/audit?' + new URLSearchParams(next);
  });
  const go = (o) => { location.hash = '#/audit?' + new URLSearchParams({...filters, offset: o}); };
  view.append(form,
    table(['time', 'actor', 'action', 'tenant', 'target', 'detail'],
      data.entries.slice(offset, offset + PAGE).map((e) => [
        fmtNs(e.ts_ns), e.actor, h('span', {class: 'mono'}, e.action), e.tenant || '–', e.target || '–',
        h('span', {class: 'mono detail'}, JSON.stringify(e.detail)),
      ]), {id: 'audit-table'}),
    pager(offset, PAGE, data.entries.length, go));
}
