"""The built-in `mock` provider: deterministic, in-process, no network.

What it answers, so tests and demos can rely on it:

- Text: ``"[<model>] You said: <last user message>"``, the last user message verbatim
  (text parts joined with a newline). After a ``tool`` message it answers
  ``"[<model>] Tool result: <content>"``; with no user message, ``"[<model>] Hello."``.
- Tools: when the request offers tools and ``tool_choice`` is not ``none`` and the last
  message is not a tool result, it calls one tool (the named one, else the first),
  with arguments built from the tool's JSON schema: each string property gets the last
  user message, numbers 1, integers 1, booleans true, anything else null.
  ``finish_reason`` is ``tool_calls``.
- ``stop`` cuts the text before the earliest stop sequence (``finish_reason: stop``);
  ``max_tokens``/``max_completion_tokens`` cut it to that many tokens
  (``finish_reason: length``); ``n`` gives n identical choices.
- Usage: ``prompt_tokens`` from `aegisflow.tokens.prompt_tokens`; ``completion_tokens``
  is the token count of one choice's text (or of the tool name plus arguments) times n.
- Streams: the text in chunks of ``stream_chunk_words`` words, ``stream_chunk_delay_ms``
  apart, after ``latency_ms``; a role chunk first, a finish chunk, then a usage chunk.
- Failures: with probability ``failure_rate`` a request fails with ``failure_status``
  before any output (seeded with ``seed`` for reproducible runs).
"""

import hashlib
import math
import os
import random
import threading
import time

import orjson

from aegisflow import tokens
from aegisflow.providers.base import Provider
from aegisflow.providers.base import upstream_error


class MockProvider(Provider):
    type = 'mock'
    embeddings = True

    def __init__(self, config, **options):
        super().__init__(config, **options)
        self.opts = config.mock
        self._rng = random.Random(self.opts.seed)
        self._rng_lock = threading.Lock()
        self._latency = self.opts.latency_ms / 1000.0
        self._delay = self.opts.stream_chunk_delay_ms / 1000.0

    # -- the reply -----------------------------------------------------------

    def _maybe_fail(self):
        rate = self.opts.failure_rate
        if rate <= 0:
            return
        with self._rng_lock:
            roll = self._rng.random()
        if roll < rate:
            raise upstream_error(
                self.name,
                self.opts.failure_status,
                'failure injected by the mock provider',
            )

    def _reply(self, request, model):
        """(text or None, tool_call or None, finish_reason, completion_tokens)."""
        messages = request.messages
        last = messages[-1]
        user_text = _last_user_text(messages)
        call = self._tool_call(request, last, user_text)
        if call is not None:
            fn = call['function']
            used = tokens.count_tokens(fn['name']) + tokens.count_tokens(
                fn['arguments']
            )
            return None, call, 'tool_calls', used
        if last.get('role') == 'tool':
            result, _ = tokens.content_text(last.get('content'))
            text = f'[{model}] Tool result: {result}'
        elif user_text is not None:
            text = f'[{model}] You said: {user_text}'
        else:
            text = f'[{model}] Hello.'
        finish = 'stop'
        cut = min(
            (i for i in (text.find(s) for s in request.stop if s) if i >= 0), default=-1
        )
        if cut >= 0:
            text = text[:cut]
        limit = request.max_tokens
        if limit is not None and tokens.count_tokens(text) > limit:
            text = tokens.truncate_to_tokens(text, limit)
            finish = 'length'
        return text, None, finish, tokens.count_tokens(text)

    def _tool_call(self, request, last, user_text):
        choice = request.tool_choice
        if not request.tools or choice == 'none' or last.get('role') == 'tool':
            return None
        tool = None
        if isinstance(choice, dict):
            wanted = choice['function']['name']
            tool = next((t for t in request.tools if _tool_name(t) == wanted), None)
        tool = tool or request.tools[0]
        args = {}
        schema = (tool.get('function') or {}).get('parameters') or {}
        for prop, spec in (schema.get('properties') or {}).items():
            kind = spec.get('type') if isinstance(spec, dict) else None
            args[prop] = {
                'string': user_text or '',
                'number': 1,
                'integer': 1,
                'boolean': True,
            }.get(kind)
        return {
            'id': 'call_' + os.urandom(12).hex(),
            'type': 'function',
            'function': {
                'name': _tool_name(tool),
                'arguments': orjson.dumps(args).decode(),
            },
        }

    def _usage(self, request, completion):
        prompt = tokens.prompt_tokens(request.messages, request.tools or None)
        completion *= request.n
        return {
            'prompt_tokens': prompt,
            'completion_tokens': completion,
            'total_tokens': prompt + completion,
            'prompt_tokens_details': {'cached_tokens': 0},
            'completion_tokens_details': {'reasoning_tokens': 0},
        }

    # -- the interface -------------------------------------------------------

    def embed(self, request, model):
        """Unit vectors derived from each text's hash: the same text always gets the
        same vector (``dimensions``, default 8); usage is the texts' token count."""
        self._maybe_fail()
        if self._latency:
            time.sleep(self._latency)
        dims = request.dimensions or 8
        data, used = [], 0
        for i, text in enumerate(request.texts):
            used += tokens.count_tokens(text)
            raw = hashlib.blake2b(
                text.encode('utf-8', 'surrogatepass'), digest_size=64
            ).digest()
            values = [(raw[j % 64] - 127.5) / 127.5 for j in range(dims)]
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            data.append(
                {
                    'object': 'embedding',
                    'index': i,
                    'embedding': [round(v / norm, 6) for v in values],
                }
            )
        return {
            'object': 'list',
            'model': model,
            'data': data,
            'usage': {'prompt_tokens': used, 'total_tokens': used},
        }

    def complete(self, request, model):
        self._maybe_fail()
        if self._latency:
            time.sleep(self._latency)
        text, call, finish, used = self._reply(request, model)
        message = {'role': 'assistant', 'content': text, 'refusal': None}
        if call is not None:
            message['tool_calls'] = [call]
        return {
            'id': 'chatcmpl-' + os.urandom(12).hex(),
            'object': 'chat.completion',
            'created': int(time.time()),
            'model': model,
            'system_fingerprint': 'fp_mock',
            'choices': [
                {
                    'index': i,
                    'message': message,
                    'logprobs': None,
                    'finish_reason': finish,
                }
                for i in range(request.n)
            ],
            'usage': self._usage(request, used),
        }

    def stream(self, request, model):
        self._maybe_fail()
        text, call, finish, used = self._reply(request, model)
        return self._chunks(request, model, text, call, finish, used)

    def _chunks(self, request, model, text, call, finish, used):
        base = {
            'id': 'chatcmpl-' + os.urandom(12).hex(),
            'object': 'chat.completion.chunk',
            'created': int(time.time()),
            'model': model,
            'system_fingerprint': 'fp_mock',
        }
        if self._latency:
            time.sleep(self._latency)
        n = request.n

        def chunk(i, delta, finish_reason=None):
            return {
                **base,
                'choices': [
                    {
                        'index': i,
                        'delta': delta,
                        'logprobs': None,
                        'finish_reason': finish_reason,
                    }
                ],
            }

        for i in range(n):
            yield chunk(
                i, {'role': 'assistant', 'content': '' if call is None else None}
            )
        for piece in _pieces(text, call, self.opts.stream_chunk_words):
            if self._delay:
                time.sleep(self._delay)
            for i in range(n):
                yield chunk(i, piece)
        for i in range(n):
            yield chunk(i, {}, finish)
        yield {**base, 'choices': [], 'usage': self._usage(request, used)}


def _pieces(text, call, words):
    """Delta dicts for the body of a streamed reply."""
    if call is not None:
        fn = call['function']
        yield {
            'tool_calls': [
                {
                    'index': 0,
                    'id': call['id'],
                    'type': 'function',
                    'function': {'name': fn['name'], 'arguments': ''},
                }
            ]
        }
        args = fn['arguments']
        step = max(1, 4 * words)
        for start in range(0, len(args), step):
            yield {
                'tool_calls': [
                    {'index': 0, 'function': {'arguments': args[start : start + step]}}
                ]
            }
        return
    parts = text.split(' ')
    for start in range(0, len(parts), words):
        piece = ' '.join(parts[start : start + words])
        if start + words < len(parts):
            piece += ' '
        if piece:
            yield {'content': piece}


def _tool_name(tool):
    if tool.get('type') == 'custom':
        return tool['custom']['name']
    return tool['function']['name']


def _last_user_text(messages):
    for msg in reversed(messages):
        if msg.get('role') == 'user':
            return tokens.content_text(msg.get('content'))[0]
    return None
