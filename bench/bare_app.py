"""The limit of the stack: a Falcon app that reads the body and answers fixed JSON
(or, to a streaming request, a fixed SSE stream).

Run under the same Gunicorn worker class as the gateway, it shows what Gunicorn plus
Falcon cost on their own, so the gateway's figures can be read as a ratio.
"""

from pathlib import Path

import falcon

REPLY = (
    b'{"id":"chatcmpl-bare","object":"chat.completion","created":1700000000,'
    b'"model":"mock","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"fixed"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}'
)


# the static upstream's stream: the same bytes the gateway relays in the benchmark
STREAM = (Path(__file__).resolve().parent / 'upstream' / 'stream.sse').read_bytes()


class Chat:
    def on_post(self, req, resp):
        if b'"stream":true' in req.bounded_stream.read():
            resp.content_type = 'text/event-stream'
            resp.stream = iter((STREAM,))
            return
        resp.data = REPLY
        resp.content_type = 'application/json'


class Health:
    def on_get(self, req, resp):
        resp.data = b'{"status":"ok"}'


application = falcon.App()
application.add_route('/v1/chat/completions', Chat())
application.add_route('/healthz', Health())
