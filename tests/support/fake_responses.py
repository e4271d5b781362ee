"""A fake OpenAI Responses API: a real HTTP server speaking the documented format.

POST /v1/responses, by model:
  gpt-resp   "echo: <last user text>"; with tools and no function_call_output in
             the input, a function_call of the first tool with {"city": <text>};
             after a function_call_output, "result was: <its output>"
  gpt-cut    (stream) the connection closes after the first text delta
  gpt-<code> that HTTP status with OpenAI's error envelope
A ``previous_response_id`` must name a response this server made (else 404,
``previous_response_not_found``); the response it names is kept for
GET /v1/responses/{id} and DELETE /v1/responses/{id}.
Usage: 20 input tokens (8 cached), 6 output tokens (2 reasoning).
Streams: response.created, response.in_progress, per item
output_item.added / content_part.added / output_text.delta / output_text.done /
content_part.done / output_item.done (function_call_arguments.delta / .done for a
call), response.completed; each event with its sequence_number.
Request bodies are kept in `raw` (bytes) and `requests` (headers, parsed); answer
bodies in `sent`.
"""

import itertools
import json

from tests.support.httpserver import FakeHandler
from tests.support.httpserver import FakeServer

USAGE = {
    'input_tokens': 20,
    'input_tokens_details': {'cached_tokens': 8},
    'output_tokens': 6,
    'output_tokens_details': {'reasoning_tokens': 2},
    'total_tokens': 26,
}


class FakeResponses(FakeServer):
    prefix = '/v1'

    def __init__(self):
        super().__init__(_Handler)
        self.raw = []
        self.sent = []
        self.stored = {}
        self.ids = itertools.count(1)


def _last_text(items):
    if isinstance(items, str):
        return items, None
    for item in reversed(items or ()):
        if item.get('type') == 'function_call_output':
            return None, item['output']
        if item.get('role') == 'user':
            content = item['content']
            if isinstance(content, str):
                return content, None
            return ' '.join(p.get('text', '') for p in content), None
    return '', None


def _output(body, n):
    text, result = _last_text(body.get('input'))
    tools = body.get('tools') or []
    if result is None and tools and tools[0].get('type') == 'function':
        return [
            {
                'id': f'fc_{n}',
                'type': 'function_call',
                'status': 'completed',
                'call_id': f'call_{n}',
                'name': tools[0]['name'],
                'arguments': json.dumps({'city': text}),
            }
        ]
    said = f'result was: {result}' if result is not None else f'echo: {text}'
    return [
        {
            'id': f'msg_{n}',
            'type': 'message',
            'status': 'completed',
            'role': 'assistant',
            'content': [{'type': 'output_text', 'text': said, 'annotations': []}],
        }
    ]


def _response(body, n, status, output):
    return {
        'id': f'resp_fake{n}',
        'object': 'response',
        'created_at': 1_700_000_000 + n,
        'status': status,
        'error': None,
        'incomplete_details': None,
        'instructions': body.get('instructions'),
        'model': body['model'],
        'output': output,
        'parallel_tool_calls': True,
        'previous_response_id': body.get('previous_response_id'),
        'store': body.get('store', True),
        'temperature': 1.0,
        'text': {'format': {'type': 'text'}},
        'tool_choice': 'auto',
        'tools': body.get('tools') or [],
        'top_p': 1.0,
        'truncation': 'disabled',
        'usage': USAGE if status == 'completed' else None,
        'metadata': {},
    }


class _Handler(FakeHandler):
    def send_bytes(self, status, data, ctype, headers=()):
        self.server.fake.sent.append(data)
        super().send_bytes(status, data, ctype, headers)

    def send_sse(self, events, keep_alive=False):
        self.server.fake.sent.append(b''.join(events))
        super().send_sse(events, keep_alive)

    def _error(self, status, message, param=None, code=None):
        self.send_json(
            status,
            {
                'error': {
                    'message': message,
                    'type': 'invalid_request_error',
                    'param': param,
                    'code': code,
                }
            },
        )

    def _id(self):
        return self.path.split('?')[0].rsplit('/', 1)[1]

    def do_GET(self):
        stored = self.server.fake.stored.get(self._id())
        if stored is None:
            return self._error(404, 'No response found.')
        self.send_json(200, stored)

    def do_DELETE(self):
        if self.server.fake.stored.pop(self._id(), None) is None:
            return self._error(404, 'No response found.')
        self.send_json(200, {'id': self._id(), 'object': 'response', 'deleted': True})

    def do_POST(self):
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        body = json.loads(raw)
        fake.raw.append(raw)
        fake.requests.append((dict(self.headers), body))
        code = body['model'].split('-', 1)[1]
        if code.isdigit():
            return self._error(int(code), f'fake says {code}')
        previous = body.get('previous_response_id')
        if previous is not None and previous not in fake.stored:
            return self._error(
                404,
                f"Previous response with id '{previous}' not found.",
                'previous_response_id',
                'previous_response_not_found',
            )
        n = next(fake.ids)
        output = _output(body, n)
        final = _response(body, n, 'completed', output)
        if body.get('store', True):
            fake.stored[final['id']] = final
        if body.get('stream'):
            return self.send_sse(_events(body, n, output, final), keep_alive=True)
        self.send_json(200, final)


def _events(body, n, output, final):
    seq = itertools.count()

    def ev(kind, data):
        data = {'type': kind, **data, 'sequence_number': next(seq)}
        return f'event: {kind}\ndata: {json.dumps(data)}\n\n'.encode()

    started = _response(body, n, 'in_progress', [])
    out = [
        ev('response.created', {'response': started}),
        ev('response.in_progress', {'response': started}),
    ]
    for i, item in enumerate(output):
        if item['type'] == 'message':
            text = item['content'][0]['text']
            opened = dict(item, status='in_progress', content=[])
            out.append(
                ev('response.output_item.added', {'output_index': i, 'item': opened})
            )
            where = {'item_id': item['id'], 'output_index': i, 'content_index': 0}
            part = {'type': 'output_text', 'text': '', 'annotations': []}
            out.append(ev('response.content_part.added', {**where, 'part': part}))
            words = text.split(' ')
            for j, word in enumerate(words):
                piece = word + (' ' if j < len(words) - 1 else '')
                out.append(
                    ev(
                        'response.output_text.delta',
                        {**where, 'delta': piece, 'logprobs': []},
                    )
                )
                if body['model'] == 'gpt-cut':
                    return out
            out.append(
                ev('response.output_text.done', {**where, 'text': text, 'logprobs': []})
            )
            out.append(
                ev('response.content_part.done', {**where, 'part': item['content'][0]})
            )
        else:
            opened = dict(item, status='in_progress', arguments='')
            out.append(
                ev('response.output_item.added', {'output_index': i, 'item': opened})
            )
            where = {'item_id': item['id'], 'output_index': i}
            args = item['arguments']
            for j in range(0, len(args), 6):
                out.append(
                    ev(
                        'response.function_call_arguments.delta',
                        {**where, 'delta': args[j : j + 6]},
                    )
                )
            out.append(
                ev(
                    'response.function_call_arguments.done',
                    {**where, 'arguments': args},
                )
            )
        out.append(ev('response.output_item.done', {'output_index': i, 'item': item}))
    out.append(ev('response.completed', {'response': final}))
    return out
