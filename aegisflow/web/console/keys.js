// Keys: a tenant's keys a page at a time; create one (its secret shown once, with
// a copy button), edit its scope, rotate it, revoke it.

import {ApiError, api, query} from './api.js';
import {clear, confirmButton, field, fmtInt, fmtNs, fmtUsd, h, notice, pager, table} from './dom.js';
import {limitText} from './tenants.js';

const PAGE = 50;

function keyState(k) {
  if (k.revoked_ns) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  return 'live';
}

function budgetText(b) {
  if (!b) return '–';
  const parts = [];
  if (b.daily_usd != null) parts.push(`${fmtUsd(b.daily_usd)}/day`);
  if (b.monthly_usd != null) parts.push(`${fmtUsd(b.monthly_usd)}/month`);
  if (b.max_usd != null) parts.push(`${fmtUsd(b.max_usd)} per ${b.budget_duration}`);
  return parts.join(' · ');
}

const num = (text) => (text.trim() === '' ? null : Number(text));

// The scope a form describes; null for a field left empty (PATCH: removes it).
function scopeOf(form) {
  const get = (name) => form.elements[name].value;
  const models = get('allowed_models').split(',').map((m) => m.trim()).filter(Boolean);
  const rpm = num(get('rpm'));
  const tpm = num(get('tpm'));
  const daily = num(get('daily_usd'));
  const monthly = num(get('monthly_usd'));
  const expires = get('expires_at').trim();
  const meta = get('metadata').trim();
  let metadata = null;
  if (meta) {
    try {
      metadata = JSON.parse(meta);
    } catch (e) {
      throw new ApiError(400, 'Metadata: not JSON (' + e.message + ')', 'invalid_json', 'metadata');
    }
  }
  const rate = {};
  if (rpm !== null) rate.requests_per_minute = rpm;
  if (tpm !== null) rate.tokens_per_minute = tpm;
  const budget = {};
  if (daily !== null) budget.daily_usd = daily;
  if (monthly !== null) budget.monthly_usd = monthly;
  return {
    allowed_models: models.length ? models : null,
    rate_limit: Object.keys(rate).length ? rate : null,
    budget: Object.keys(budget).length ? budget : null,
    expires_at: expires ? (/[zZ]|[+-]\d\d:?\d\d$/.test(expires) ? expires : expires + 'Z') : null,
    metadata,
  };
}

function scopeForm(id, key, submitLabel, onsubmit) {
  const k = key || {};
  const rate = k.rate_limit || {};
  const budget = k.budget || {};
  const input = (name, value, attrs) => h('input', {name, value: value ?? '', ...(attrs || {})});
  const status = h('div', {class: 'form-status'});
  const form = h('form', {id, class: 'key-form'},
    key ? null : field('Name', input('name', '', {required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}', placeholder: 'ci-bot'})),
    field('Models (comma-separated globs; empty: the tenant\'s)', input('allowed_models', (k.allowed_models || []).join(', '))),
    field('Requests/min', input('rpm', rate.requests_per_minute, {type: 'number', min: 1})),
    field('Tokens/min', input('tpm', rate.tokens_per_minute, {type: 'number', min: 1})),
    field('Daily budget (USD)', input('daily_usd', budget.daily_usd, {type: 'number', min: 0, step: 'any'})),
    field('Monthly budget (USD)', input('monthly_usd', budget.monthly_usd, {type: 'number', min: 0, step: 'any'})),
    field('Expires (ISO 8601, UTC)', input('expires_at', k.expires_at || '', {placeholder: '2027-01-31T00:00:00Z'})),
    field('Metadata (JSON object)', h('textarea', {name: 'metadata', rows: 2, value: k.metadata ? JSON.stringify(k.metadata) : ''})),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, submitLabel)),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(status);
    try {
      await onsubmit(form);
    } catch (err) {
      status.append(notice(err.message));
    }
  });
  return form;
}

function secretPanel(title, secret) {
  const code = h('code', {id: 'new-secret', class: 'secret'}, secret);
  const copied = h('span', {class: 'copied', role: 'status'});
  const copy = h('button', {type: 'button', id: 'copy-secret', class: 'primary'}, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(secret);
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand('copy');
    }
    copied.textContent = 'copied';
  });
  return h('div', {class: 'secret-panel', id: 'secret-panel'},
    h('h3', {}, title),
    h('p', {}, 'This is the only time the secret is shown: store it now.'),
    h('div', {class: 'secret-row'}, code, copy, copied));
}

export async function keys(view, params) {
  const tenantList = (await api('tenants')).tenants.map((t) => t.id).sort();
  const tenant = tenantList.includes(params.get('tenant')) ? params.get('tenant') : tenantList[0];
  if (!tenant) {
    view.append(h('p', {class: 'empty'}, 'No tenants yet.'));
    return;
  }
  const q = params.get('q') || '';
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const go = (o, over) => {
    location.hash = '#/keys?' + new URLSearchParams({tenant, q, offset: o, ...(over || {})});
  };
  const data = await api(`tenants/${encodeURIComponent(tenant)}/keys` + query({limit: PAGE, offset, q}));
  const tenantSelect = h('select', {id: 'key-tenant', onchange: (e) => go(0, {tenant: e.target.value, q: ''})},
    tenantList.map((t) => h('option', {value: t, selected: t === tenant}, t)));
  const search = h('input', {type: 'search', id: 'key-search', value: q, placeholder: 'name or id'});
  search.addEventListener('change', () => go(0, {q: search.value}));
  const panel = h('div', {id: 'key-panel'});
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const showCreate = () => {
    clear(panel).append(h('h3', {}, `New key for ${tenant}`), scopeForm('key-create', null, 'Create key', async (form) => {
      const body = {name: form.elements.name.value.trim()};
      for (const [k, v] of Object.entries(scopeOf(form))) if (v !== null) body[k] = v;
      const made = await api(`tenants/${encodeURIComponent(tenant)}/keys`, {method: 'POST', body});
      clear(panel).append(secretPanel(`Key ${made.name} (${made.id}) created`, made.key),
        h('button', {type: 'button', onclick: reload}, 'Done'));
    }));
  };
  const edit = (k) => {
    clear(panel).append(h('h3', {}, `Edit ${k.name} (${k.id})`), scopeForm('key-edit', k, 'Save', async (form) => {
      await api('keys/' + encodeURIComponent(k.id), {method: 'PATCH', body: scopeOf(form)});
      reload();
    }));
  };
  const guarded = (fn) => async (k) => {
    try {
      await fn(k);
    } catch (err) {
      clear(panel).append(notice(err.message));
    }
  };
  const rotate = guarded(async (k) => {
    const made = await api(`keys/${encodeURIComponent(k.id)}/rotate`, {method: 'POST', body: {grace_s: 0}});
    clear(panel).append(secretPanel(`Key ${k.name} rotated: the old secret stopped`, made.key),
      h('button', {type: 'button', onclick: reload}, 'Done'));
  });
  const revoke = guarded(async (k) => {
    await api('keys/' + encodeURIComponent(k.id), {method: 'DELETE'});
    reload();
  });
  view.append(
    h('div', {class: 'toolbar'}, field('Tenant', tenantSelect), field('Find', search),
      h('button', {type: 'button', id: 'key-new', class: 'primary', onclick: showCreate}, 'New key')),
    panel,
    table(['name', 'id', 'source', 'state', 'created', 'expires', 'models', 'rate limit', 'budget', 'metadata', ''],
      data.keys.map((k) => {
        const state = keyState(k);
        const live = k.source === 'admin' && state !== 'revoked';
        return [
          h('span', {class: 'mono'}, k.name), h('span', {class: 'mono'}, k.id || '–'), k.source,
          h('span', {class: 'badge ' + state}, state), fmtNs(k.created_ns), k.expires_at || '–',
          k.allowed_models ? k.allowed_models.join(', ') : '–', limitText(k.rate_limit), budgetText(k.budget),
          k.metadata ? h('span', {class: 'mono meta'}, JSON.stringify(k.metadata)) : '–',
          live ? h('span', {class: 'row-actions'},
            h('button', {type: 'button', onclick: () => edit(k)}, 'Edit'),
            confirmButton('Rotate', 'Rotate now?', () => rotate(k)),
            confirmButton('Revoke', 'Revoke now?', () => revoke(k), {dataset: {key: k.id}})) : '',
        ];
      }), {id: 'key-table', dataset: {total: data.total}}),
    pager(offset, PAGE, data.total, (o) => go(o)),
    h('p', {class: 'hint'}, `${fmtInt(data.total)} keys match. Keys written in the config file are changed by editing it.`));
}
