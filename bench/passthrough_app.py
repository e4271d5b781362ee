"""The limit of the stack for a proxy: a Falcon app that forwards the request body
to the upstream with urllib3 and relays the answer (streamed for SSE), with no
authentication, validation, routing, policies or accounting.

Run under the same Gunicorn worker class as the gateway (bench/upstream.py), it
shows what Gunicorn, Falcon and urllib3 cost on their own for the same work, so the
gateway's throughput through the same upstream can be read as a ratio.
``PASSTHROUGH_JSON`` and ``PASSTHROUGH_SSE`` name the upstream's base URLs.
"""

import os

import falcon
import urllib3

from bench.bare_app import Health

JSON_URL = (
    os.environ.get('PASSTHROUGH_JSON', 'http://127.0.0.1:1') + '/chat/completions'
)
SSE_URL = os.environ.get('PASSTHROUGH_SSE', 'http://127.0.0.1:1') + '/chat/completions'
POOL = urllib3.PoolManager(maxsize=64, block=False)
HEADERS = {'Content-Type': 'application/json'}


class Chat:
    def on_post(self, req, resp):
        body = req.bounded_stream.read()
        stream = b'"stream":true' in body
        up = POOL.request(
            'POST',
            SSE_URL if stream else JSON_URL,
            body=body,
            headers=HEADERS,
            preload_content=not stream,
        )
        resp.status = up.status
        resp.content_type = up.headers.get('Content-Type', 'application/json')
        if not stream:
            resp.data = up.data
            return

        def relay():
            try:
                yield from up.stream(8192)
            finally:
                up.release_conn()

        resp.stream = relay()


application = falcon.App()
application.add_route('/v1/chat/completions', Chat())
application.add_route('/healthz', Health())
