"""A fake OpenAI Chat Completions server: a real HTTP server on a loopback port.

It speaks the documented wire format: ``chat.completion`` objects, SSE streams of
``chat.completion.chunk`` events ending in ``data: [DONE]``, a usage chunk when
``stream_options.include_usage`` is set, and the error envelope with the documented
status codes. The requested model picks the behaviour:

  ok-*        a normal answer ("echo: <last user text>")
  err-<code>  that HTTP status with an OpenAI error body (429 adds Retry-After: 7)
  cut         a stream that stops after two chunks without [DONE]
  badjson     a non-JSON body (or a malformed stream event)
  midfail     a stream that sends an error event after one chunk
  flaky-N-*   503 for the first N calls of that model name, then normal answers
  once429-*   429 with Retry-After: 1 on the first call of that name, then normal
  slow-*      a normal answer after two seconds
  drip        a stream of 50 words, one every 0.1 s (``aborted`` is set when the
              gateway hangs up before the end)

A ``healthy=True`` instance answers every model normally (a fallback target).
``calls`` counts calls per model name.
"""

import collections
import json
import threading
import time

from tests.support.httpserver import FakeHandler
from tests.support.httpserver import FakeServer


class FakeOpenAI(FakeServer):
    prefix = '/v1'

    def __init__(self, healthy=False):
        super().__init__(_Handler)  # requests: (headers dict, body dict) per call
        self.healthy = healthy
        self.calls = collections.Counter()
        self.lock = threading.Lock()
        self.paths = []
        self.aborted = threading.Event()
        self.drip_done = threading.Event()


class _Handler(FakeHandler):
    def do_POST(self):
        length = int(self.headers.get('Content-Length', 0))
        body = json.loads(self.rfile.read(length))
        self.server.fake.requests.append((dict(self.headers), body))
        self.server.fake.paths.append(self.path)
        if self.path.endswith('/embeddings'):
            return self._embeddings(body)
        model = body.get('model', '')
        fake = self.server.fake
        with fake.lock:
            fake.calls[model] += 1
            seen = fake.calls[model]
        if fake.healthy:
            return (
                self._stream(body, model)
                if body.get('stream')
                else self.send_json(200, _completion(body, model))
            )
        if model.startswith('flaky-') and seen <= int(model.split('-')[1]):
            return self._error(503)
        if model.startswith('once429-') and seen == 1:
            return self._error(429, retry_after='1')
        if model.startswith('slow-'):
            time.sleep(2)
        if model == 'drip':
            return self._drip(body)
        if model.startswith('err-'):
            return self._error(int(model.split('-')[1]))
        if model == 'badjson':
            if body.get('stream'):
                return self.send_sse([b'data: {"id": oops\n\n'])
            return self.send_bytes(200, b'<html>not json</html>', 'text/html')
        if body.get('stream'):
            return self._stream(body, model)
        return self.send_json(200, _completion(body, model))

    def _drip(self, body):
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True
        try:
            for i in range(50):
                chunk = {
                    'id': 'chatcmpl-drip',
                    'object': 'chat.completion.chunk',
                    'created': 1700000000,
                    'model': 'drip',
                    'choices': [
                        {
                            'index': 0,
                            'delta': {'content': f'w{i} '},
                            'finish_reason': None,
                        }
                    ],
                }
                self.wfile.write(b'data: ' + json.dumps(chunk).encode() + b'\n\n')
                self.wfile.flush()
                time.sleep(0.1)
            self.wfile.write(b'data: [DONE]\n\n')
            self.server.fake.drip_done.set()
        except OSError:
            self.server.fake.aborted.set()

    def _embeddings(self, body):
        inputs = body['input'] if isinstance(body['input'], list) else [body['input']]
        self.send_json(
            200,
            {
                'object': 'list',
                'model': body['model'],
                'data': [
                    {
                        'object': 'embedding',
                        'index': i,
                        'embedding': [0.5, -0.5, float(i)],
                    }
                    for i, _ in enumerate(inputs)
                ],
                'usage': {
                    'prompt_tokens': 4 * len(inputs),
                    'total_tokens': 4 * len(inputs),
                },
            },
        )

    def _error(self, status, retry_after='7'):
        kinds = {
            400: 'invalid_request_error',
            401: 'invalid_request_error',
            429: 'requests',
            500: 'server_error',
            503: 'server_error',
        }
        headers = [('Retry-After', retry_after)] if status == 429 else []
        self.send_json(
            status,
            {
                'error': {
                    'message': f'fake upstream says {status}',
                    'type': kinds.get(status, 'server_error'),
                    'param': None,
                    'code': None,
                }
            },
            headers,
        )

    def _stream(self, body, model):
        text = 'echo: ' + _last_user(body)
        base = {
            'id': 'chatcmpl-fake',
            'object': 'chat.completion.chunk',
            'created': 1700000000,
            'model': model,
        }
        usage_on = (body.get('stream_options') or {}).get('include_usage')

        def ev(choices, usage=None):
            obj = dict(base, choices=choices)
            if usage_on:
                obj['usage'] = usage
            return b'data: ' + json.dumps(obj).encode() + b'\n\n'

        events = [
            ev(
                [
                    {
                        'index': 0,
                        'delta': {'role': 'assistant', 'content': ''},
                        'finish_reason': None,
                    }
                ]
            )
        ]
        for word in text.split(' '):
            events.append(
                ev(
                    [
                        {
                            'index': 0,
                            'delta': {'content': word + ' '},
                            'finish_reason': None,
                        }
                    ]
                )
            )
        if model == 'cut':
            return self.send_sse(events[:3])
        if model == 'midfail':
            err = {'error': {'message': 'overloaded', 'type': 'server_error'}}
            return self.send_sse(
                events[:2] + [b'data: ' + json.dumps(err).encode() + b'\n\n']
            )
        events.append(ev([{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]))
        if usage_on:
            events.append(ev([], _usage(body, text)))
        events.append(b'data: [DONE]\n\n')
        self.send_sse([b': keep-alive\n\n'] + events, keep_alive=True)


def _last_user(body):
    for m in reversed(body.get('messages', [])):
        if m.get('role') == 'user' and isinstance(m.get('content'), str):
            return m['content']
    return ''


def _usage(body, text):
    prompt = sum(len(str(m.get('content', '')).split()) for m in body['messages']) + 5
    completion = len(text.split())
    return {
        'prompt_tokens': prompt,
        'completion_tokens': completion,
        'total_tokens': prompt + completion,
    }


def _completion(body, model):
    text = 'echo: ' + _last_user(body)
    return {
        'id': 'chatcmpl-fake',
        'object': 'chat.completion',
        'created': 1700000000,
        'model': model,
        'choices': [
            {
                'index': 0,
                'message': {'role': 'assistant', 'content': text},
                'finish_reason': 'stop',
                'logprobs': None,
            }
        ],
        'usage': _usage(body, text),
    }
