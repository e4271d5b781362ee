"""A fake Anthropic Messages API: a real HTTP server speaking the documented format.

POST /v1/messages, by model:
  claude-text    "echo: <last user text>", stop_reason end_turn, usage with cache
                 reads (3) and writes (2)
  claude-tool    a text block, then a tool_use block calling the first tool with
                 {"city": <last user text>}; after a tool_result: "result was: <it>"
  claude-max     stop_reason max_tokens
  claude-<code>  that HTTP status with Anthropic's error envelope (429 adds
                 retry-after: 3; 529 is overloaded_error)
  claude-midfail (stream) an error event after the first text delta
  claude-cut     (stream) the connection closes after the first text delta
  claude-think   with ``thinking`` enabled: a signed thinking block ("Thinking
                 about <text>."), then the echo; without it, the echo alone
  claude-say     the last user text itself, as the answer's text
The raw bytes of every request body are kept in `raw`, of every answer body in
`sent`.
POST /v1/messages/count_tokens: {"input_tokens": 1000 + the characters of every
text in the body} (a figure no estimator would produce), or an error for
claude-<code>.
Streams follow the documented event sequence: message_start, ping, per block
content_block_start / content_block_delta (thinking_delta then signature_delta,
text_delta, input_json_delta) / content_block_stop, message_delta, message_stop.
"""

import json

from tests.support.httpserver import FakeHandler
from tests.support.httpserver import FakeServer

ERRORS = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    429: 'rate_limit_error',
    500: 'api_error',
    529: 'overloaded_error',
}


class FakeAnthropic(FakeServer):
    prefix = '/v1'

    def __init__(self):
        super().__init__(_Handler)  # requests: (headers, body)
        self.raw = []
        self.sent = []  # the bytes of every answer body


SIGNATURE = 'EqQBCkYIBxgCKkB' + 'x' * 40 + '=='


def _thinking(text):
    return {
        'type': 'thinking',
        'thinking': f'Thinking about {text}.',
        'signature': SIGNATURE,
    }


def _last_user(body):
    for turn in reversed(body['messages']):
        if turn['role'] != 'user':
            continue
        content = turn['content']
        if isinstance(content, str):
            return content, None
        for block in content:
            if block['type'] == 'tool_result':
                return None, block
        return ' '.join(b.get('text', '') for b in content if b['type'] == 'text'), None
    return '', None


def _reply(body):
    """(content blocks, stop_reason)."""
    model = body['model']
    text, result = _last_user(body)
    if model == 'claude-tool' and result is None:
        tool = body['tools'][0]['name']
        return [
            {'type': 'text', 'text': 'Let me check.'},
            {
                'type': 'tool_use',
                'id': 'toolu_01',
                'name': tool,
                'input': {'city': text},
            },
        ], 'tool_use'
    if result is not None:
        return [
            {'type': 'text', 'text': f'result was: {result["content"]}'}
        ], 'end_turn'
    if model == 'claude-say':
        return [{'type': 'text', 'text': text}], 'end_turn'
    if (
        model == 'claude-think'
        and (body.get('thinking') or {}).get('type') == 'enabled'
    ):
        return [_thinking(text), {'type': 'text', 'text': f'echo: {text}'}], 'end_turn'
    return (
        [{'type': 'text', 'text': f'echo: {text}'}],
        'max_tokens' if model == 'claude-max' else 'end_turn',
    )


USAGE = {
    'input_tokens': 12,
    'output_tokens': 5,
    'cache_read_input_tokens': 3,
    'cache_creation_input_tokens': 2,
}


class _Handler(FakeHandler):
    def send_bytes(self, status, data, ctype, headers=()):
        self.server.fake.sent.append(data)
        super().send_bytes(status, data, ctype, headers)

    def send_sse(self, events, keep_alive=False):
        self.server.fake.sent.append(b''.join(events))
        super().send_sse(events, keep_alive)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        body = json.loads(raw)
        self.server.fake.requests.append((dict(self.headers), body))
        self.server.fake.raw.append(raw)
        if self.path.endswith('/messages/count_tokens'):
            return self._count(body)
        model = body['model']
        code = model.split('-', 1)[1]
        if code.isdigit():
            return self._error(int(code))
        blocks, stop = _reply(body)
        if body.get('stream'):
            return self._stream(body, blocks, stop)
        self.send_json(
            200,
            {
                'id': 'msg_01',
                'type': 'message',
                'role': 'assistant',
                'model': model,
                'content': blocks,
                'stop_reason': stop,
                'stop_sequence': None,
                'usage': USAGE,
            },
        )

    def _error(self, status):
        headers = [('retry-after', '3')] if status == 429 else []
        self.send_json(
            status,
            {
                'type': 'error',
                'error': {
                    'type': ERRORS.get(status, 'api_error'),
                    'message': f'fake says {status}',
                },
            },
            headers,
        )

    def _stream(self, body, blocks, stop):
        def ev(kind, data):
            data = dict(data, type=kind)
            return f'event: {kind}\ndata: {json.dumps(data)}\n\n'.encode()

        out = [
            ev(
                'message_start',
                {
                    'message': {
                        'id': 'msg_02',
                        'type': 'message',
                        'role': 'assistant',
                        'model': body['model'],
                        'content': [],
                        'stop_reason': None,
                        'usage': {
                            k: v for k, v in USAGE.items() if k != 'output_tokens'
                        }
                        | {'output_tokens': 1},
                    }
                },
            ),
            ev('ping', {}),
        ]
        for i, block in enumerate(blocks):
            if block['type'] == 'text':
                out.append(
                    ev(
                        'content_block_start',
                        {'index': i, 'content_block': {'type': 'text', 'text': ''}},
                    )
                )
                words = block['text'].split(' ')
                for j, word in enumerate(words):
                    piece = word + (' ' if j < len(words) - 1 else '')
                    out.append(
                        ev(
                            'content_block_delta',
                            {
                                'index': i,
                                'delta': {'type': 'text_delta', 'text': piece},
                            },
                        )
                    )
                    if body['model'] == 'claude-cut':
                        return self.send_sse(out)  # and the connection closes
                    if body['model'] == 'claude-midfail':
                        out.append(
                            ev(
                                'error',
                                {
                                    'error': {
                                        'type': 'overloaded_error',
                                        'message': 'Overloaded',
                                    }
                                },
                            )
                        )
                        return self.send_sse(out)
            elif block['type'] == 'thinking':
                out.append(
                    ev(
                        'content_block_start',
                        {
                            'index': i,
                            'content_block': {
                                'type': 'thinking',
                                'thinking': '',
                                'signature': '',
                            },
                        },
                    )
                )
                words = block['thinking'].split(' ')
                for j, word in enumerate(words):
                    piece = word + (' ' if j < len(words) - 1 else '')
                    delta = {'type': 'thinking_delta', 'thinking': piece}
                    out.append(ev('content_block_delta', {'index': i, 'delta': delta}))
                delta = {'type': 'signature_delta', 'signature': block['signature']}
                out.append(ev('content_block_delta', {'index': i, 'delta': delta}))
            else:
                out.append(
                    ev(
                        'content_block_start',
                        {
                            'index': i,
                            'content_block': {
                                'type': 'tool_use',
                                'id': block['id'],
                                'name': block['name'],
                                'input': {},
                            },
                        },
                    )
                )
                args = json.dumps(block['input'])
                for j in range(0, len(args), 5):
                    out.append(
                        ev(
                            'content_block_delta',
                            {
                                'index': i,
                                'delta': {
                                    'type': 'input_json_delta',
                                    'partial_json': args[j : j + 5],
                                },
                            },
                        )
                    )
            out.append(ev('content_block_stop', {'index': i}))
        out.append(
            ev(
                'message_delta',
                {
                    'delta': {'stop_reason': stop, 'stop_sequence': None},
                    'usage': {'output_tokens': 5},
                },
            )
        )
        out.append(ev('message_stop', {}))
        self.send_sse(out, keep_alive=True)

    def _count(self, body):
        code = body['model'].split('-', 1)[1]
        if code.isdigit():
            return self._error(int(code))
        chars = len(json.dumps(body.get('messages'))) + len(str(body.get('system', '')))
        self.send_json(200, {'input_tokens': 1000 + chars})
