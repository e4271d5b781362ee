"""A hostile upstream: a real HTTP server that speaks OpenAI's Chat Completions
(``/v1/chat/completions``) and Anthropic's Messages API (``/v1/messages``) wire
formats, but answers the way a broken or malicious upstream (or a proxy in front of
one) does. The requested model picks the behaviour:

  echo-<status>     that status; the error message is the request's headers, JSON
  echoraw-<status>  that status; a text/plain body listing the request's headers
  partial           401 with the key printed as providers print it
                    (first 8 characters, stars, the last 4)
  streamecho        a 200 stream: one chunk, then an error event echoing headers
  null | list | nochoices | baddelta
                    a 200 stream whose first event is ``null``, ``[1,2]``, a chunk
                    without ``choices``, or a ``delta`` that is a string
  mid-null          a 200 stream: one good chunk, then ``data: null``
  badcompletion     a 200 JSON completion whose message is a string
  badfinish         a 200 JSON completion whose finish_reason is a list
  oddusage          a 200 JSON completion whose usage counts are strings and floats
  twice-null-*      a stream whose first event is ``null`` on the first two calls
                    of that name, then a normal stream
  ra-<name>         429 with a hostile ``Retry-After`` (see `RETRY_AFTER`)
  anything else     a normal answer

On ``/v1/messages`` the same names with an ``an-`` prefix do the same in Anthropic's
format, ``an-null`` sends ``null`` as its first event and ``an-badblock`` a
``tool_use`` block without its id and name after ``message_start``.

``calls`` counts calls per model name.
"""

import collections
import json
import threading
import time
from email.utils import formatdate

from tests.support.httpserver import FakeHandler
from tests.support.httpserver import FakeServer

RETRY_AFTER = {
    'neg': lambda: '-1',
    'nan': lambda: 'nan',
    'inf': lambda: 'inf',
    'junk': lambda: 'soon, maybe',
    'past': lambda: formatdate(time.time() - 3600, usegmt=True),
    'huge': lambda: '99999999999',
    'future': lambda: formatdate(time.time() + 3600, usegmt=True),
}


class FakeHostile(FakeServer):
    prefix = '/v1'

    def __init__(self):
        super().__init__(_Handler)
        self.calls = collections.Counter()
        self.lock = threading.Lock()


def _chunk(model, delta, finish=None):
    return {
        'id': 'chatcmpl-hostile',
        'object': 'chat.completion.chunk',
        'created': 1700000000,
        'model': model,
        'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}],
    }


def _event(obj):
    return b'data: ' + json.dumps(obj).encode() + b'\n\n'


class _Handler(FakeHandler):
    def do_POST(self):
        length = int(self.headers.get('Content-Length', 0))
        body = json.loads(self.rfile.read(length))
        model = body.get('model', '')
        fake = self.server.fake
        with fake.lock:
            fake.calls[model] += 1
            seen = fake.calls[model]
        anthropic = self.path.endswith('/messages')
        echoed = json.dumps(dict(self.headers))
        # the same behaviours on /v1/messages (an-) and behind a fallback (fb-)
        name = model.removeprefix('an-').removeprefix('fb-')
        status = int(name.rsplit('-', 1)[1]) if name.startswith('echo') else 0
        if name.startswith('echoraw-'):
            lines = ''.join(f'{k}: {v}\r\n' for k, v in self.headers.items())
            return self.send_bytes(status, lines.encode(), 'text/plain')
        if name.startswith('echo-'):
            return self._error(status, f'request headers were {echoed}', anthropic)
        if name == 'partial':
            key = self.headers.get('x-api-key') or self.headers.get(
                'Authorization', ''
            ).removeprefix('Bearer ')
            shown = key[:8] + '*' * 20 + key[-4:]
            return self._error(
                401,
                f'Incorrect API key provided: {shown}. You can find your API key '
                'in your dashboard.',
                anthropic,
            )
        if name.startswith('ra-'):
            value = RETRY_AFTER[name[3:]]()
            return self._error(429, 'slow down', anthropic, [('Retry-After', value)])
        if anthropic:
            return self._anthropic(body, model, name, echoed)
        if name == 'badcompletion':
            return self.send_json(
                200,
                {'id': 'x', 'object': 'chat.completion', 'model': model,
                 'choices': [{'index': 0, 'message': 'not an object'}]},
            )  # fmt: skip
        if name == 'oddusage':  # counts of the wrong types: still a good answer
            out = _completion(model)
            out['usage'] = {'prompt_tokens': '12', 'completion_tokens': 1.5,
                            'total_tokens': None, 'prompt_tokens_details': {
                                'cached_tokens': 'x'}}  # fmt: skip
            return self.send_json(200, out)
        if name == 'badfinish':
            out = _completion(model)
            out['choices'][0]['finish_reason'] = ['stop']
            return self.send_json(200, out)
        if not body.get('stream'):
            return self.send_json(200, _completion(model))
        first = _event(_chunk(model, {'role': 'assistant', 'content': ''}))
        hostile = {
            'null': b'data: null\n\n',
            'list': b'data: [1, 2]\n\n',
            'nochoices': _event({'id': 'x', 'object': 'chat.completion.chunk'}),
            'baddelta': _event(dict(_chunk(model, {}), choices=[{'delta': 'x'}])),
        }
        if name in hostile:
            return self.send_sse([hostile[name]])
        if name.startswith('twice-null-') and seen <= 2:
            return self.send_sse([hostile['null']])
        if name == 'mid-null':
            return self.send_sse([first, _event(_chunk(model, {'content': 'hi '})),
                                  b'data: null\n\n'])  # fmt: skip
        if name == 'streamecho':
            error = {'error': {'message': f'proxy saw {echoed}', 'type': 'x'}}
            return self.send_sse([first, _event(_chunk(model, {'content': 'a '})),
                                  _event(error)])  # fmt: skip
        return self.send_sse(
            [
                first,
                _event(_chunk(model, {'content': 'fine'})),
                _event(_chunk(model, {}, 'stop')),
                b'data: [DONE]\n\n',
            ]
        )

    def _error(self, status, message, anthropic, headers=()):
        if anthropic:
            body = {
                'type': 'error',
                'error': {'type': 'authentication_error', 'message': message},
            }
        else:
            body = {'error': {'message': message, 'type': 'invalid_request_error'}}
        self.send_json(status, body, headers)

    def _anthropic(self, body, model, name, echoed):
        if not body.get('stream'):
            return self.send_json(
                200,
                {'id': 'msg_1', 'type': 'message', 'role': 'assistant',
                 'model': model, 'content': [{'type': 'text', 'text': 'fine'}],
                 'stop_reason': 'end_turn',
                 'usage': {'input_tokens': 3, 'output_tokens': 1}},
            )  # fmt: skip

        def named(kind, data):
            return f'event: {kind}\ndata: {json.dumps(data)}\n\n'.encode()

        start = named(
            'message_start',
            {'type': 'message_start',
             'message': {'id': 'msg_1', 'model': model, 'usage': {'input_tokens': 3}}},
        )  # fmt: skip
        if name == 'streamecho':
            error = {
                'type': 'error',
                'error': {'type': 'overloaded_error', 'message': f'saw {echoed}'},
            }
            return self.send_sse([start, named('error', error)])
        if name == 'null':
            return self.send_sse([b'event: message_start\ndata: null\n\n'])
        if name == 'badblock':
            block = {'type': 'content_block_start', 'index': 0,
                     'content_block': {'type': 'tool_use'}}  # fmt: skip
            return self.send_sse([start, named('content_block_start', block)])
        return self.send_sse(
            [
                start,
                named('content_block_delta',
                      {'type': 'content_block_delta', 'index': 0,
                       'delta': {'type': 'text_delta', 'text': 'fine'}}),
                named('message_delta',
                      {'type': 'message_delta', 'delta': {'stop_reason': 'end_turn'},
                       'usage': {'output_tokens': 1}}),
                named('message_stop', {'type': 'message_stop'}),
            ]
        )  # fmt: skip


def _completion(model):
    return {
        'id': 'chatcmpl-hostile',
        'object': 'chat.completion',
        'created': 1700000000,
        'model': model,
        'choices': [
            {
                'index': 0,
                'message': {'role': 'assistant', 'content': 'fine'},
                'finish_reason': 'stop',
            }
        ],
        'usage': {'prompt_tokens': 3, 'completion_tokens': 1, 'total_tokens': 4},
    }
