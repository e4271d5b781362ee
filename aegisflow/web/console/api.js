// The admin API, and nothing else: the same endpoints a script would call, with
// the admin key sent as a header. The key is kept in sessionStorage (gone when the
// tab closes); no cookie is ever set, so no other site can make the browser act.

const STORE = 'aegisflow.adminKey';

export class ApiError extends Error {
  constructor(status, message, code, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

export function adminKey() {
  return sessionStorage.getItem(STORE);
}

export function setAdminKey(key) {
  if (key) sessionStorage.setItem(STORE, key);
  else sessionStorage.removeItem(STORE);
}

let onUnauthorized = () => {};

export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export function query(params) {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') out.set(k, String(v));
  }
  const text = out.toString();
  return text ? '?' + text : '';
}

// fetch an admin path; JSON in and out (or the raw Response with {raw: true})
export async function api(path, {method = 'GET', body, raw = false, key} = {}) {
  const headers = {Authorization: 'Bearer ' + (key || adminKey() || '')};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch('/admin/v1/' + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
  });
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    let code;
    let param;
    try {
      const err = (await resp.json()).error || {};
      message = err.message || message;
      code = err.code;
      param = err.param;
    } catch (e) {
      // not JSON: keep the status line
    }
    const error = new ApiError(resp.status, message, code, param);
    if (resp.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return raw ? resp : resp.json();
}
