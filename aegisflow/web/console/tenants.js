// Tenants: every tenant's limits, budget spend against its limits (with the
// warning line) and keys; one tenant's live counters (GET /admin/v1/tenants...).

import {api, query} from './api.js';
import {budgetBar} from './chart.js';
import {clear, confirmButton, field, fmtInt, fmtNs, fmtUsd, h, notice, pager, table} from './dom.js';

const PAGE = 50;

export function modelsText(models) {
  return !models || !models.length || (models.length === 1 && models[0] === '*') ? 'all' : models.join(', ');
}

export function limitText(limit) {
  if (!limit) return '–';
  const names = {
    requests_per_minute: 'req/min', tokens_per_minute: 'tok/min', max_parallel: 'parallel',
    request_burst: 'req burst', token_burst: 'tok burst',
  };
  return Object.entries(limit).map(([k, v]) => `${fmtInt(v)} ${names[k] || k}`).join(' · ');
}

function spendCells(counters, warnAt) {
  const spend = (counters || []).filter((c) => c.limit_usd !== undefined);
  if (!spend.length) return '–';
  return h('div', {class: 'spend'}, spend.map((c) => h('div', {class: 'spend-row'},
    h('span', {class: 'spend-label'}, `${c.period}: ${fmtUsd(c.spent_usd)} of ${fmtUsd(c.limit_usd)}`),
    budgetBar(c.spent_usd, c.limit_usd, warnAt))));
}

export async function tenants(view, params) {
  const data = await api('tenants');
  const all = data.tenants.sort((a, b) => a.id.localeCompare(b.id));
  const q = (params.get('q') || '').toLowerCase();
  const shown = q ? all.filter((t) => t.id.toLowerCase().includes(q)) : all;
  const offset = Math.min(Math.max(0, Number(params.get('offset')) || 0), Math.max(0, shown.length - 1));
  const page = shown.slice(offset - (offset % PAGE), offset - (offset % PAGE) + PAGE);
  const go = (o, text) => { location.hash = '#/tenants?' + new URLSearchParams({q: text ?? q, offset: o}); };
  const search = h('input', {type: 'search', id: 'tenant-search', value: params.get('q') || '', placeholder: 'tenant id'});
  search.addEventListener('change', () => go(0, search.value));
  const panel = h('div', {id: 'tenant-panel'});
  const showCreate = () => clear(panel).append(h('h3', {}, 'New tenant'), tenantForm());
  view.append(
    h('div', {class: 'toolbar'}, field('Find', search),
      h('button', {type: 'button', id: 'tenant-new', class: 'primary', onclick: showCreate}, 'New tenant')),
    panel,
    table(['tenant', 'source', 'models', 'rate limit', 'budget', 'keys'], page.map((t) => [
      h('a', {href: '#/tenants/' + encodeURIComponent(t.id)}, t.id),
      t.source,
      modelsText(t.allowed_models),
      limitText(t.rate_limit),
      spendCells(t.spend, t.budget && t.budget.warn_at),
      h('a', {href: '#/keys?' + new URLSearchParams({tenant: t.id})}, t.keys.length ? `${fmtInt(t.keys.length)} in config, more…` : 'keys…'),
    ]), {id: 'tenant-table'}),
    pager(offset - (offset % PAGE), PAGE, shown.length, (o) => go(o)));
}

const number = (form, name) => {
  const text = form.elements[name].value.trim();
  return text === '' ? null : Number(text);
};

// A tenant made at run time: its id, models, rate limit and budget (the API reads
// them with the config file's rules and says which field is wrong).
function tenantForm() {
  const input = (name, attrs) => h('input', {name, ...(attrs || {})});
  const status = h('div', {class: 'form-status'});
  const form = h('form', {id: 'tenant-create', class: 'key-form'},
    field('Id', input('id', {required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}', placeholder: 'team-search'})),
    field('Models (comma-separated globs; empty: all)', input('allowed_models')),
    field('Requests/min', input('rpm', {type: 'number', min: 1})),
    field('Tokens/min', input('tpm', {type: 'number', min: 1})),
    field('Daily budget (USD)', input('daily_usd', {type: 'number', min: 0, step: 'any'})),
    field('Monthly budget (USD)', input('monthly_usd', {type: 'number', min: 0, step: 'any'})),
    field('Warn at (share of budget)', input('warn_at', {type: 'number', min: 0, max: 1, step: 'any', placeholder: '0.8'})),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Create tenant')),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(status);
    const body = {id: form.elements.id.value.trim()};
    const models = form.elements.allowed_models.value.split(',').map((m) => m.trim()).filter(Boolean);
    if (models.length) body.allowed_models = models;
    const rate = {};
    if (number(form, 'rpm') !== null) rate.requests_per_minute = number(form, 'rpm');
    if (number(form, 'tpm') !== null) rate.tokens_per_minute = number(form, 'tpm');
    if (Object.keys(rate).length) body.rate_limit = rate;
    const budget = {};
    if (number(form, 'daily_usd') !== null) budget.daily_usd = number(form, 'daily_usd');
    if (number(form, 'monthly_usd') !== null) budget.monthly_usd = number(form, 'monthly_usd');
    if (Object.keys(budget).length && number(form, 'warn_at') !== null) budget.warn_at = number(form, 'warn_at');
    if (Object.keys(budget).length) body.budget = budget;
    try {
      const made = await api('tenants', {method: 'POST', body});
      location.hash = '#/tenants/' + encodeURIComponent(made.id);
    } catch (err) {
      status.append(notice(err.message));
    }
  });
  return form;
}

export async function tenant(view, id) {
  const t = await api('tenants/' + encodeURIComponent(id));
  const keys = await api(`tenants/${encodeURIComponent(id)}/keys` + query({limit: 10}));
  const warnAt = t.budget && t.budget.warn_at;
  view.append(
    h('h2', {}, 'Tenant ', h('span', {class: 'mono', id: 'tenant-id'}, t.id), ` (${t.source})`),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Models'), h('dd', {}, modelsText(t.allowed_models)),
      h('dt', {}, 'Rate limit'), h('dd', {}, limitText(t.rate_limit)),
      h('dt', {}, 'Per-user limit'), h('dd', {}, limitText(t.user_rate_limit)),
      h('dt', {}, 'Budget'), h('dd', {}, t.budget ? [
        t.budget.daily_usd != null ? `${fmtUsd(t.budget.daily_usd)} a day` : null,
        t.budget.monthly_usd != null ? ` ${fmtUsd(t.budget.monthly_usd)} a month` : null,
        warnAt ? ` (warning at ${Math.round(warnAt * 100)}%)` : null] : 'none')),
    h('h3', {}, 'Live counters'),
    table(['kind', 'scope', 'limit', 'now', 'resets in'], t.counters.map((c) => counterRow(c, warnAt)), {id: 'tenant-counters'}),
    h('h3', {}, `Keys (${fmtInt(keys.total)})`),
    table(['name', 'id', 'source', 'created', 'state'], keys.keys.map((k) => [
      h('span', {class: 'mono'}, k.name), h('span', {class: 'mono'}, k.id || '–'), k.source,
      fmtNs(k.created_ns), k.revoked_ns ? 'revoked' : 'live']), {id: 'tenant-keys'}),
    h('p', {}, h('a', {href: '#/keys?' + new URLSearchParams({tenant: t.id})},
      keys.total > keys.keys.length ? `All ${fmtInt(keys.total)} keys →` : 'Manage keys →')),
    t.source === 'admin' ? deleteTenant(t.id) : h('p', {class: 'hint'}, 'Defined in the config file: change it there.'));
}

function deleteTenant(id) {
  const status = h('div', {});
  const button = confirmButton('Delete tenant', 'Delete it and revoke its keys?', async () => {
    try {
      await api('tenants/' + encodeURIComponent(id), {method: 'DELETE'});
      location.hash = '#/tenants';
    } catch (err) {
      status.append(notice(err.message));
    }
  }, {id: 'tenant-delete'});
  return h('div', {class: 'toolbar'}, button, status);
}

function counterRow(c, warnAt) {
  if (c.limit_usd !== undefined) {
    return [c.kind, c.scope, `${fmtUsd(c.limit_usd)} a ${c.period}`,
      h('div', {class: 'spend-row'}, h('span', {}, `${fmtUsd(c.spent_usd)} spent `), budgetBar(c.spent_usd, c.limit_usd, warnAt)), '–'];
  }
  if (c.in_flight !== undefined) return [c.kind, c.scope, fmtInt(c.limit), `${fmtInt(c.in_flight)} in flight`, '–'];
  if (c.remaining !== undefined) {
    return [c.kind, c.scope, `${fmtInt(c.limit)}/min (burst ${fmtInt(c.burst)})`, `${fmtInt(c.remaining)} left`, `${c.reset_s} s`];
  }
  return [c.kind, c.scope, '–', c.state || '–', '–'];
}
