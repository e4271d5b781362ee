"""Ollama's native chat API (``POST /api/chat``), translated to and from OpenAI's.

Request: messages keep their roles; text parts are joined, ``data:`` image URLs
become ``images`` (base64); assistant ``tool_calls`` carry their arguments as objects;
``tools`` pass as they are. Sampling goes into ``options``: ``temperature``,
``top_p``, ``seed``, ``stop``, ``max_tokens`` -> ``num_predict``,
``presence_penalty``/``frequency_penalty``; ``response_format`` json_object ->
``format: json``, json_schema -> ``format: <schema>``.

Response: ``message.content`` and ``message.tool_calls`` (arguments serialised to
JSON, ids minted, since Ollama has none); ``done_reason`` stop -> ``stop`` (or
``tool_calls`` when it called tools), length -> ``length``; usage from
``prompt_eval_count`` and ``eval_count``. Streams are NDJSON lines, translated line by
line into chunks; the line with ``done: true`` gives the finish and the usage chunk;
a stream that ends before it fails.

Not translated: image URLs other than ``data:`` (Ollama takes inline images only;
refused with 400), ``n`` > 1 (400), ``logprobs``, ``logit_bias``.
"""

import os
import time
from contextlib import closing

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.errors import UpstreamFailed
from aegisflow.providers.http import HttpProvider
from aegisflow.providers.shape import chunk_problem
from aegisflow.providers.shape import completion_problem
from aegisflow.wire.common import count


def _content(content, param):
    """(text, images) of an OpenAI message content."""
    if content is None or isinstance(content, str):
        return content or '', []
    texts, images = [], []
    for i, part in enumerate(content):
        if part.get('type') in ('text', 'refusal'):
            texts.append(part.get(part['type']) or '')
        elif part.get('type') == 'image_url':
            url = part['image_url']['url']
            if not url.startswith('data:'):
                raise InvalidRequest(
                    'Ollama takes inline images only (data: URLs).',
                    param=f'{param}[{i}].image_url.url',
                )
            images.append(url.partition(',')[2])
    return '\n'.join(texts), images


def to_chat(request, model):
    if request.n != 1:
        raise InvalidRequest(
            'Ollama answers one choice per request: n must be 1.',
            param='n',
            code='unsupported_parameter',
        )
    body = request.body
    messages = []
    for i, msg in enumerate(request.messages):
        text, images = _content(msg.get('content'), f'messages[{i}].content')
        out = {
            'role': 'system' if msg['role'] == 'developer' else msg['role'],
            'content': text,
        }
        if images:
            out['images'] = images
        if msg.get('tool_calls'):
            out['tool_calls'] = [
                {
                    'function': {
                        'name': c['function']['name'],
                        'arguments': _arguments(c['function'].get('arguments')),
                    }
                }
                for c in msg['tool_calls']
            ]
        messages.append(out)
    options = {}
    for ours, theirs in (
        ('temperature', 'temperature'),
        ('top_p', 'top_p'),
        ('seed', 'seed'),
        ('presence_penalty', 'presence_penalty'),
        ('frequency_penalty', 'frequency_penalty'),
    ):
        if body.get(ours) is not None:
            options[theirs] = body[ours]
    if request.max_tokens is not None:
        options['num_predict'] = request.max_tokens
    if request.stop:
        options['stop'] = list(request.stop)
    out = {'model': model, 'messages': messages, 'stream': request.stream}
    if options:
        out['options'] = options
    if request.tools:
        out['tools'] = [t for t in request.tools if t.get('type') == 'function']
    fmt = body.get('response_format') or {}
    if fmt.get('type') == 'json_object':
        out['format'] = 'json'
    elif fmt.get('type') == 'json_schema':
        out['format'] = (fmt.get('json_schema') or {}).get('schema') or 'json'
    return out


def _arguments(raw):
    try:
        return orjson.loads(raw or '{}')
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            'Tool call arguments must be JSON to be sent to Ollama.', param='messages'
        ) from None


def _calls(message):
    return [
        {
            'id': 'call_' + os.urandom(12).hex(),
            'type': 'function',
            'function': {
                'name': c['function']['name'],
                'arguments': orjson.dumps(
                    c['function'].get('arguments') or {}
                ).decode(),
            },
        }
        for c in message.get('tool_calls') or ()
    ]


def _usage(data):
    prompt = count(data.get('prompt_eval_count'))
    completion = count(data.get('eval_count'))
    return {
        'prompt_tokens': prompt,
        'completion_tokens': completion,
        'total_tokens': prompt + completion,
    }


def _finish(data, called):
    if called:
        return 'tool_calls'
    return 'length' if data.get('done_reason') == 'length' else 'stop'


class OllamaProvider(HttpProvider):
    type = 'ollama'
    structured_output = True
    embeddings = True

    def __init__(self, config, **options):
        auth = {'Authorization': f'Bearer {config.api_key}'} if config.api_key else {}
        super().__init__(config, headers=auth, **options)
        self._url = config.base_url + '/api/chat'
        self._embed_url = config.base_url + '/api/embed'

    def embed(self, request, model):
        body = {'model': model, 'input': request.texts}
        if request.dimensions:
            body['dimensions'] = request.dimensions
        data = self.post_json(self._embed_url, body)
        vectors = data.get('embeddings')
        if not isinstance(vectors, list):
            raise UpstreamFailed(f"Provider '{self.name}' answered without embeddings.")
        prompt = data.get('prompt_eval_count') or 0
        return {
            'object': 'list',
            'model': data.get('model', model),
            'data': [
                {'object': 'embedding', 'index': i, 'embedding': v}
                for i, v in enumerate(vectors)
            ],
            'usage': {'prompt_tokens': prompt, 'total_tokens': prompt},
        }

    def complete(self, request, model):
        data = self.post_json(self._url, to_chat(request, model))
        with self.reading():
            out = self._completion(data, model)
        problem = completion_problem(out)
        if problem:
            raise self.protocol_error(problem)
        return out

    @staticmethod
    def _completion(data, model):
        message = data.get('message') or {}
        calls = _calls(message)
        out = {
            'role': 'assistant',
            'content': message.get('content') or None,
            'refusal': None,
        }
        if calls:
            out['tool_calls'] = calls
        return {
            'id': 'chatcmpl-' + os.urandom(12).hex(),
            'object': 'chat.completion',
            'created': int(time.time()),
            'model': data.get('model', model),
            'choices': [
                {
                    'index': 0,
                    'message': out,
                    'logprobs': None,
                    'finish_reason': _finish(data, calls),
                }
            ],
            'usage': _usage(data),
        }

    def stream(self, request, model):
        return self._events(self.post_stream(self._url, to_chat(request, model)), model)

    def _events(self, resp, model):
        base = {
            'id': 'chatcmpl-' + os.urandom(12).hex(),
            'object': 'chat.completion.chunk',
            'created': int(time.time()),
            'model': model,
        }

        def chunk(delta, finish=None):
            return {
                **base,
                'choices': [
                    {
                        'index': 0,
                        'delta': delta,
                        'logprobs': None,
                        'finish_reason': finish,
                    }
                ],
            }

        done, called, started = False, False, False
        with closing(self.lines(resp, lambda: done)) as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise UpstreamFailed(
                        f"Provider '{self.name}' sent a malformed stream line."
                    ) from None
                if not isinstance(data, dict):
                    raise self.protocol_error('a stream line that is not an object')
                if data.get('error'):
                    raise self.stream_failure(data['error'])
                out = []
                with self.reading():
                    if not started:
                        started = True
                        base['model'] = data.get('model', model)
                        out.append(chunk({'role': 'assistant', 'content': ''}))
                    message = data.get('message') or {}
                    if message.get('content'):
                        out.append(chunk({'content': message['content']}))
                    calls = _calls(message)
                    if calls:
                        called = True
                        out.append(
                            chunk(
                                {
                                    'tool_calls': [
                                        dict(c, index=i) for i, c in enumerate(calls)
                                    ]
                                }
                            )
                        )
                    if data.get('done'):
                        out.append(chunk({}, _finish(data, called)))
                        out.append({**base, 'choices': [], 'usage': _usage(data)})
                for c in out:
                    problem = chunk_problem(c)
                    if problem:
                        raise self.protocol_error(problem)
                    yield c
                if data.get('done'):
                    done = True
                    break
