// Providers and breakers: every target's breaker state and latency average, and
// forcing one open or closed (GET/POST /admin/v1/breakers), refreshed every 5 s.

import {api} from './api.js';
import {clear, field, fmtMs, h, notice, table} from './dom.js';

export async function providers(view, params, onLeave) {
  const config = await api('config');
  const status = h('div', {id: 'breaker-status'});
  const body = h('div', {id: 'breakers'});
  const seconds = h('input', {type: 'number', id: 'open-seconds', min: 1, max: 86400, value: 60});
  const force = async (target, action) => {
    clear(status);
    try {
      const body = {target, action};
      if (action === 'open') body.seconds = Number(seconds.value) || 60;
      await api('breakers', {method: 'POST', body});
      status.append(notice(`${target}: forced ${action === 'open' ? 'open' : 'closed'}`, 'ok'));
      await draw();
    } catch (err) {
      status.append(notice(err.message));
    }
  };
  const draw = async () => {
    const data = await api('breakers');
    clear(body).append(table(['target', 'state', 'open for', 'latency (avg)', ''], data.breakers.map((b) => [
      h('span', {class: 'mono'}, b.target),
      h('span', {class: 'badge breaker-' + b.state.replace(/[^a-z_]/g, ''), dataset: {target: b.target}}, b.state),
      b.open_for_s ? `${b.open_for_s} s` : '–',
      fmtMs(b.latency_ms),
      h('span', {class: 'row-actions'},
        h('button', {type: 'button', class: 'danger', dataset: {open: b.target}, onclick: () => force(b.target, 'open')}, 'Force open'),
        h('button', {type: 'button', dataset: {close: b.target}, onclick: () => force(b.target, 'close')}, 'Close')),
    ]), {id: 'breaker-table'}));
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 5000);
  onLeave(() => clearInterval(timer));
  view.append(
    h('dl', {class: 'facts'},
      h('dt', {}, 'Providers'), h('dd', {}, config.providers.join(', ') || '–'),
      h('dt', {}, 'Disabled'), h('dd', {}, config.disabled_providers.join(', ') || 'none'),
      h('dt', {}, 'Config'), h('dd', {class: 'mono'}, `${config.source} · ${config.digest.slice(0, 12)}`)),
    h('div', {class: 'toolbar'}, field('Force open for (s)', seconds)),
    status, body);
}
