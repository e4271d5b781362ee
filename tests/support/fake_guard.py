"""Fake guardrail servers, real HTTP on loopback ports, in OpenAI's wire format.

`FakeGuard` answers ``POST /v1/moderations`` (a result per input: ``KILL-MARKER``
flags violence at 0.93, ``SAD-MARKER`` self-harm at 0.5, an image URL with
``bad-image`` in it sexual content) and ``POST /v1/chat/completions`` as a guard
model: Llama Guard 3 style (``safe``, or ``unsafe`` and a line of codes:
``KILL-MARKER`` S1, ``ODD-MARKER`` S14, ``GARBLE-MARKER`` an answer that is neither),
or a JSON judge when the system prompt asks for one. ``SLOW-MARKER`` makes either
answer after 3 s. A call waits first for `gate` (an Event) when one is set, and
sets `started` as it begins.

`FakeMain` is a main upstream that reports what happened to its calls: `started`
when a call arrives, `answered` once a complete answer is written, `first_sent`
once a stream's first chunk is out, and `closed` when the gateway hangs up a stream
it was still sending. It waits for `gate` (when set) before answering.
"""

import collections
import json
import threading
import time

from tests.support.httpserver import FakeHandler
from tests.support.httpserver import FakeServer

GATE_S = 10  # how long a gated call waits at most


class FakeGuard(FakeServer):
    prefix = '/v1'

    def __init__(self):
        super().__init__(_GuardHandler)
        self.calls = collections.Counter()  # path -> calls
        self.inputs = []  # what each call judged
        self.gate = None
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.delay_s = 0.0  # the guard's own latency (benchmarks)


def _flags(text):
    if 'KILL-MARKER' in text:
        return {'violence': 0.93, 'harassment': 0.2}
    if 'SAD-MARKER' in text:
        return {'self-harm': 0.5}
    if 'bad-image' in text:
        return {'sexual': 0.88}
    return {}


def _moderation(item):
    if isinstance(item, list):  # multimodal parts
        text = ' '.join(
            p.get('text') or (p.get('image_url') or {}).get('url', '') for p in item
        )
    else:
        text = item
    scores = _flags(text)
    flagged = {name: score >= 0.6 for name, score in scores.items()}
    return {
        'flagged': any(flagged.values()),
        'categories': {'violence': False, 'self-harm': False, **flagged},
        'category_scores': {'violence': 0.01, 'self-harm': 0.01, **scores},
    }


class _GuardHandler(FakeHandler):
    disable_nagle_algorithm = True  # NOTE: no delayed-ACK stall between writes

    def do_POST(self):
        try:
            self._answer()
        except OSError:
            pass  # NOTE: the gateway gave up on this call (a timeout, a cancel)

    def _answer(self):
        length = int(self.headers.get('Content-Length', 0))
        body = json.loads(self.rfile.read(length))
        fake = self.server.fake
        fake.started.set()
        with fake.lock:
            fake.calls[self.path] += 1
        if fake.gate is not None:
            fake.gate.wait(GATE_S)
        if fake.delay_s:
            time.sleep(fake.delay_s)
        if self.path.endswith('/moderations'):
            inputs = (
                body['input'] if isinstance(body['input'], list) else [body['input']]
            )
            fake.inputs.extend(inputs)
            if any('SLOW-MARKER' in json.dumps(i) for i in inputs):
                time.sleep(3)
            return self.send_json(
                200,
                {
                    'id': 'modr-fake',
                    'model': body.get('model'),
                    'results': [
                        _moderation(i if isinstance(i, str) else [i]) for i in inputs
                    ],
                },
            )
        messages = body['messages']
        judged = messages[-1]['content']
        fake.inputs.append(judged)
        if 'SLOW-MARKER' in judged:
            time.sleep(3)
        judge = messages[0]['role'] == 'system' and 'JSON' in messages[0]['content']
        if judge:
            answer = (
                '```json\n{"verdict": "block", "category": "violence", '
                '"reason": "threat"}\n```'
                if 'KILL-MARKER' in judged
                else '{"verdict": "allow", "reason": "fine"}'
            )
        elif 'KILL-MARKER' in judged:
            answer = 'unsafe\nS1'
        elif 'ODD-MARKER' in judged:
            answer = 'unsafe\nS14'
        elif 'GARBLE-MARKER' in judged:
            answer = 'I am not sure.'
        else:
            answer = 'safe'
        self.send_json(
            200,
            {
                'id': 'chatcmpl-guard',
                'object': 'chat.completion',
                'created': 1700000000,
                'model': body['model'],
                'choices': [
                    {
                        'index': 0,
                        'message': {'role': 'assistant', 'content': answer},
                        'finish_reason': 'stop',
                    }
                ],
                'usage': {
                    'prompt_tokens': 200,
                    'completion_tokens': 4,
                    'total_tokens': 204,
                },
            },
        )


class FakeMain(FakeServer):
    prefix = '/v1'

    def __init__(self):
        super().__init__(_MainHandler)
        self.gate = None
        self.started = threading.Event()
        self.answered = threading.Event()
        self.first_sent = threading.Event()
        self.closed = threading.Event()
        self.delay_s = 0.0

    def reset(self):
        for event in (self.started, self.answered, self.first_sent, self.closed):
            event.clear()
        self.gate = None
        self.delay_s = 0.0


SECRET = 'MAIN-ANSWER-SECRET'


class _MainHandler(FakeHandler):
    disable_nagle_algorithm = True

    def do_POST(self):
        length = int(self.headers.get('Content-Length', 0))
        body = json.loads(self.rfile.read(length))
        fake = self.server.fake
        fake.requests.append((dict(self.headers), body))
        fake.started.set()
        if fake.gate is not None:
            fake.gate.wait(GATE_S)
        if fake.delay_s:
            time.sleep(fake.delay_s)  # NOTE: the upstream's own latency (benchmarks)
        user = next(
            (m['content'] for m in reversed(body['messages']) if m['role'] == 'user'),
            '',
        )
        text = f'{SECRET} echo: {user}' if 'HOLD' in user else f'echo: {user}'
        if body.get('stream'):
            return self._stream(body, text, hold='HOLD' in user)
        try:
            self._answer(body, text)
        except OSError:
            fake.closed.set()  # NOTE: the gateway hung up before the answer
            return
        fake.answered.set()

    def _answer(self, body, text):
        self.send_json(
            200,
            {
                'id': 'chatcmpl-main',
                'object': 'chat.completion',
                'created': 1700000000,
                'model': body['model'],
                'choices': [
                    {
                        'index': 0,
                        'message': {'role': 'assistant', 'content': text},
                        'finish_reason': 'stop',
                    }
                ],
                'usage': {
                    'prompt_tokens': 11,
                    'completion_tokens': len(text.split()),
                    'total_tokens': 11 + len(text.split()),
                },
            },
        )
        self.wfile.flush()

    def _stream(self, body, text, hold):
        """Chunks of the text; with `hold`, the first chunk, then keep-alives until
        the gateway hangs up (or `GATE_S`), then the rest."""
        fake = self.server.fake
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True

        def chunk(delta, finish=None):
            obj = {
                'id': 'chatcmpl-main',
                'object': 'chat.completion.chunk',
                'created': 1700000000,
                'model': body['model'],
                'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}],
            }
            return b'data: ' + json.dumps(obj).encode() + b'\n\n'

        words = text.split(' ')
        try:
            self.wfile.write(chunk({'role': 'assistant', 'content': words[0] + ' '}))
            self.wfile.flush()
            fake.first_sent.set()
            if hold:
                deadline = time.monotonic() + GATE_S
                while time.monotonic() < deadline:
                    time.sleep(0.05)
                    self.wfile.write(b': keep-alive\n\n')
                    self.wfile.flush()
            for word in words[1:]:
                self.wfile.write(chunk({'content': word + ' '}))
                self.wfile.flush()
            self.wfile.write(chunk({}, 'stop'))
            self.wfile.write(b'data: [DONE]\n\n')
            self.wfile.flush()
        except OSError:
            fake.closed.set()
