"""Per-request costs of Gunicorn's own layer, taken out in each worker.

- The ``Date`` header: Gunicorn formats it for every response through the
  ``email`` package (`gunicorn.util.http_date`); it changes once a second, so
  each worker formats it once a second (`http_date`).
- Settings: every ``cfg.name`` Gunicorn reads while it parses a request and
  writes its response goes through ``Config.__getattr__`` and the setting's
  ``get()``. A worker's settings are fixed for its life (a reload starts new
  workers), so `SettledConfig` reads each once, when the worker is forked,
  whatever its class.
- The response's head and body in one send: Gunicorn sends the head, then the
  body, two system calls (and two packets) for a response whose body the app
  gives whole, as every JSON answer of the gateway is. `OneSendResponse` sends
  them together when the first write is the whole body (a streamed response
  still gets its head at once, with its first piece).
- Whether the peer is a trusted proxy: Gunicorn parses the peer's address
  (``ipaddress``) and matches it against ``forwarded_allow_ips`` for every
  request; the answer for an address is fixed for a worker's life, so it is
  kept (`allow_list_match`, at most `PEERS_KEPT` addresses).
- The base of each request's environ: Gunicorn builds it anew per request,
  ``wsgi.errors`` included (a logger looked up under the logging module's
  lock); it is the same for every request of a worker, so it is built once and
  copied (`base_environ`).
"""

import time
from email.utils import formatdate

from gunicorn import util
from gunicorn.http import message
from gunicorn.http import wsgi

PEERS_KEPT = 4096
ONE_SEND_MAX = 64 * 1024  # NOTE: past this, copying the body costs more than a send

_cached = (0, '')  # NOTE: (second, text), replaced whole: threads read it too


def http_date(timestamp=None):
    """`gunicorn.util.http_date`, formatted at most once a second for now."""
    global _cached
    if timestamp is not None:
        return formatdate(timestamp, localtime=False, usegmt=True)
    now = int(time.time())
    second, text = _cached
    if second != now:
        text = formatdate(now, localtime=False, usegmt=True)
        _cached = (now, text)
    return text


_PER_REQUEST = ('is_ssl', 'sendfile')  # properties read for every request


class SettledConfig:
    """Gunicorn's ``Config`` with every setting's value read once.

    The properties read for every request are read once too; the others
    (``env``, ``ssl_options`` and the like) are still read from it."""

    def __init__(self, cfg):
        values = self.__dict__
        values['_cfg'] = cfg
        # NOTE: through getattr, not the setting's get(): a property of the config
        # can stand for a setting of its name (worker_class: the class, not its uri)
        for name in (*cfg.settings, *_PER_REQUEST):
            values[name] = getattr(cfg, name)

    def __getattr__(self, name):
        return getattr(self._cfg, name)

    def __setattr__(self, name, value):
        raise AttributeError('a worker does not change its settings')


class OneSendResponse(wsgi.Response):
    """Gunicorn's response, with its head sent with the body when the body comes
    whole in the first write."""

    def write(self, arg):
        if (
            self.headers_sent
            or self.chunked
            or self._omits_body
            or type(arg) is not bytes
            or len(arg) != self.response_length
            or len(arg) > ONE_SEND_MAX
        ):
            super().write(arg)
            return
        # NOTE: marked sent before the send: a send that fails part-way must not
        # be followed by another response on the same connection
        self.headers_sent = True
        self.sent = len(arg)
        self.sock.sendall(self._head() + arg)

    def send_headers(self):
        if not self.headers_sent:
            util.write(self.sock, self._head())
            self.headers_sent = True

    def _head(self):
        lines = self.default_headers()
        lines.extend([f'{k}: {v}\r\n' for k, v in self.headers])
        lines.append('\r\n')
        return ''.join(lines).encode('latin-1')


def environ_base(cfg):
    """`gunicorn.http.wsgi.base_environ` for `cfg`, built once: each call returns
    a copy (the request's environ is built on it)."""
    template = wsgi.base_environ(cfg)

    def base_environ(_cfg):
        return template.copy()

    return base_environ


def allow_list_match(match):
    """`match` (Gunicorn's ``_ip_in_allow_list(ip, allow_list, networks)``) with
    its answers kept per address and list (the networks are the list's, parsed)."""
    kept = {}

    def matches(ip_str, allow_list, networks):
        key = (ip_str, *allow_list)
        found = kept.get(key)
        if found is None:
            if len(kept) >= PEERS_KEPT:
                kept.clear()
            found = kept[key] = match(ip_str, allow_list, networks)
        return found

    return matches


def install(worker):
    """In `worker`, after fork (before it builds anything from its settings)."""
    util.http_date = http_date
    worker.cfg = SettledConfig(worker.cfg)
    wsgi.base_environ = environ_base(worker.cfg)
    wsgi.Response = OneSendResponse
    message._ip_in_allow_list = allow_list_match(message._ip_in_allow_list)
