// The console's shell: sign-in with the admin key, navigation, one page at a time
// rendered from the admin API. Pages live in their own modules.

import {adminKey, api, setAdminKey, whenUnauthorized} from './api.js';
import {audit} from './audit.js';
import {clear, h, notice} from './dom.js';
import {keys} from './keys.js';
import {overview} from './overview.js';
import {providers} from './providers.js';
import {tenant, tenants} from './tenants.js';
import {usage} from './usage.js';

const PAGES = {
  overview: {title: 'Overview', show: overview},
  tenants: {title: 'Tenants', show: tenants},
  keys: {title: 'Keys', show: keys},
  providers: {title: 'Providers', show: providers},
  audit: {title: 'Audit log', show: audit},
  usage: {title: 'Usage', show: usage},
};

const main = document.getElementById('main');
const login = document.getElementById('login');
const nav = document.getElementById('nav');
let leaving = [];
let shown = 0;

function signedOut(message) {
  setAdminKey(null);
  document.body.classList.remove('signed-in');
  login.hidden = false;
  main.hidden = true;
  const error = document.getElementById('login-error');
  error.textContent = message || '';
  document.getElementById('admin-key').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById('admin-key');
  const key = input.value.trim();
  try {
    await api('config', {key});
  } catch (err) {
    document.getElementById('login-error').textContent =
      err.status === 401 || err.status === 403 ? 'That is not the admin key.' : err.message;
    return;
  }
  input.value = '';
  setAdminKey(key);
  route();
}

async function route() {
  for (const fn of leaving) fn();
  leaving = [];
  if (!adminKey()) {
    signedOut();
    return;
  }
  document.body.classList.add('signed-in');
  login.hidden = true;
  main.hidden = false;
  const [path, search] = (location.hash.slice(2) || 'overview').split('?');
  const [name, ...rest] = path.split('/');
  const page = PAGES[name] || PAGES.overview;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('current', a.dataset.page === name);
  const serial = ++shown;
  const view = h('section', {class: 'page', id: 'page-' + (PAGES[name] ? name : 'overview')});
  clear(main).append(h('h1', {}, page.title), h('p', {class: 'loading'}, 'Loading…'));
  try {
    const params = new URLSearchParams(search || '');
    if (name === 'tenants' && rest.length) await tenant(view, decodeURIComponent(rest.join('/')));
    else await page.show(view, params, (fn) => leaving.push(fn));
  } catch (err) {
    if (err.status === 401) return;
    view.append(notice(err.message));
  }
  if (serial !== shown) return; // the operator moved on meanwhile
  clear(main).append(h('h1', {}, page.title), view);
  view.dataset.ready = 'true';
}

document.getElementById('login-form').addEventListener('submit', signIn);
document.getElementById('sign-out').addEventListener('click', () => {
  signedOut('Signed out.');
});
whenUnauthorized(() => signedOut('The admin key was refused; sign in again.'));
for (const [name, page] of Object.entries(PAGES)) {
  nav.append(h('a', {href: '#/' + name, dataset: {page: name}}, page.title));
}
window.addEventListener('hashchange', route);
route();
