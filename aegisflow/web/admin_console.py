"""The admin console: static HTML, CSS and JavaScript under ``/admin/``, shipped in
the package (``aegisflow/web/console/``), no build step and no request to any other
host.

The files hold no data and are served without the key (a browser cannot send a
header when it navigates); every number the console shows comes from the admin API,
called with the admin key the operator typed (kept in ``sessionStorage``, sent as a
header; no cookie, so no cross-site request can act). Nothing is served when the
admin API is off. Every response under ``/admin`` carries `SECURITY_HEADERS`: a
policy allowing scripts, styles, images and calls from the gateway itself only,
and no inline script or style; no framing; no referrer.
"""

import hashlib
from importlib import resources

from aegisflow.errors import NotFound

SECURITY_HEADERS = (
    (
        'Content-Security-Policy',
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'",
    ),
    ('X-Frame-Options', 'DENY'),
    ('Referrer-Policy', 'no-referrer'),
    ('X-Content-Type-Options', 'nosniff'),
)
_TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
    '.svg': 'image/svg+xml',
}


def is_admin(path):
    return path == '/admin' or path.startswith('/admin/')


def _files():
    """{name: (bytes, content type, etag)} of the console's files."""
    out = {}
    for entry in resources.files('aegisflow.web').joinpath('console').iterdir():
        suffix = entry.name[entry.name.rfind('.') :]
        if suffix in _TYPES:
            data = entry.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
            out[entry.name] = (data, _TYPES[suffix], etag)
    return out


class AdminConsole:
    """``GET /admin/`` (the page) and ``GET /admin/{name}`` (its files)."""

    __slots__ = ('enabled', 'files')

    def __init__(self, gw):
        self.enabled = gw.config.server.admin_key is not None
        self.files = _files() if self.enabled else {}

    def on_get(self, req, resp, name='index.html'):
        found = self.files.get(name)
        if found is None:
            raise NotFound(
                f'Unknown request URL: GET {req.path[:200]}.'
                if self.enabled
                else 'The admin console is not enabled (set server.admin_key_env).',
                code='unknown_url',
            )
        data, content_type, etag = found
        resp.set_header('ETag', etag)
        resp.set_header('Cache-Control', 'no-cache')
        if req.get_header('If-None-Match') == etag:
            resp.status = 304
            return
        resp.data = data
        resp.content_type = content_type
