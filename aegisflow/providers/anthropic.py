"""Anthropic's Messages API, translated to and from the gateway's OpenAI format.

Request (OpenAI chat -> Messages):
- ``system`` and ``developer`` messages become ``system``; the rest alternate as
  ``user``/``assistant`` turns (consecutive turns of one role are merged).
- Content parts: text as text blocks; images (``data:`` URLs as base64 sources, other
  URLs as url sources).
- Assistant ``tool_calls`` become ``tool_use`` blocks (arguments parsed from JSON);
  ``tool`` messages become ``tool_result`` blocks in a user turn.
- ``tools`` -> ``tools`` (``parameters`` as ``input_schema``); ``tool_choice``:
  auto -> auto, required -> any, none -> none, a named function -> tool;
  ``parallel_tool_calls: false`` -> ``disable_parallel_tool_use``.
- ``max_tokens``/``max_completion_tokens`` (default 4096), ``temperature`` (capped at 1,
  Anthropic's maximum), ``top_p``, ``stop`` -> ``stop_sequences``, ``user`` ->
  ``metadata.user_id``.

Response (Messages -> OpenAI): text blocks joined as ``content``; ``tool_use`` blocks as
``tool_calls`` (input serialised as JSON arguments); stop reasons ``end_turn`` and
``stop_sequence`` -> ``stop``, ``max_tokens`` -> ``length``, ``tool_use`` ->
``tool_calls``, ``refusal`` -> ``content_filter``; usage with cache reads and writes
counted inside ``prompt_tokens`` (OpenAI's convention) and itemised in
``prompt_tokens_details`` (``cached_tokens``, ``cache_write_tokens``).

Streams are translated event by event: ``message_start`` -> the role chunk; a
``tool_use`` block start -> a tool call with its id and name, its ``input_json_delta``
fragments -> argument fragments with the same tool-call index (counted over tool_use
blocks only, so text blocks in between do not shift it); ``text_delta`` -> content;
``message_delta`` -> the finish chunk; ``message_stop`` -> the usage chunk; ``ping`` is
skipped; an ``error`` event or a stream that ends early fails the stream.

Not translated (no equivalent in the Messages API): ``n`` > 1 (refused with 400),
``logprobs``, ``logit_bias``, ``presence_penalty``/``frequency_penalty``, ``seed``,
``response_format`` (JSON mode), audio and file content parts.
"""

import time
from contextlib import closing

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.errors import UpstreamFailed
from aegisflow.providers.http import HttpProvider
from aegisflow.providers.shape import chunk_problem
from aegisflow.providers.shape import completion_problem
from aegisflow.providers.shape import count

VERSION = '2023-06-01'
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    'end_turn': 'stop',
    'stop_sequence': 'stop',
    'max_tokens': 'length',
    'tool_use': 'tool_calls',
    'refusal': 'content_filter',
    'pause_turn': 'stop',
}


def _text_of(content):
    if isinstance(content, str):
        return content
    return '\n'.join(
        p.get('text', '') for p in content or () if p.get('type') == 'text'
    )


def _blocks(content):
    if isinstance(content, str):
        return [{'type': 'text', 'text': content}] if content else []
    out = []
    for part in content or ():
        kind = part.get('type')
        if kind == 'text':
            out.append({'type': 'text', 'text': part['text']})
        elif kind == 'image_url':
            url = part['image_url']['url']
            if url.startswith('data:'):
                header, _, data = url.partition(',')
                media = header[5:].split(';')[0] or 'image/png'
                out.append(
                    {
                        'type': 'image',
                        'source': {'type': 'base64', 'media_type': media, 'data': data},
                    }
                )
            else:
                out.append({'type': 'image', 'source': {'type': 'url', 'url': url}})
    return out


def _tool_result(msg):
    return {
        'type': 'tool_result',
        'tool_use_id': msg['tool_call_id'],
        'content': _text_of(msg.get('content')),
    }


def _assistant_blocks(msg):
    blocks = _blocks(msg.get('content'))
    for call in msg.get('tool_calls') or ():
        fn = call['function']
        try:
            arguments = orjson.loads(fn['arguments'] or '{}')
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                'Tool call arguments must be JSON to be sent to Anthropic.',
                param='messages',
            ) from None
        blocks.append(
            {
                'type': 'tool_use',
                'id': call['id'],
                'name': fn['name'],
                'input': arguments,
            }
        )
    return blocks


def to_messages(request, model):
    """The Messages API body for a `ChatRequest`."""
    body = request.body
    if request.n != 1:
        raise InvalidRequest(
            'Anthropic models answer one choice per request: n must be 1.',
            param='n',
            code='unsupported_parameter',
        )
    system, turns = [], []
    for msg in request.messages:
        role = msg['role']
        if role in ('system', 'developer'):
            system.append(_text_of(msg.get('content')))
            continue
        if role == 'tool' or role == 'function':
            role, blocks = (
                'user',
                [_tool_result(msg)] if role == 'tool' else _blocks(msg.get('content')),
            )
        elif role == 'assistant':
            blocks = _assistant_blocks(msg)
        else:
            blocks = _blocks(msg.get('content'))
        if turns and turns[-1]['role'] == role:
            turns[-1]['content'].extend(blocks)
        else:
            turns.append({'role': role, 'content': blocks})
    out = {
        'model': model,
        'messages': turns,
        'max_tokens': request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        out['system'] = '\n\n'.join(s for s in system if s)
    if body.get('temperature') is not None:
        out['temperature'] = min(float(body['temperature']), 1.0)
    if body.get('top_p') is not None:
        out['top_p'] = body['top_p']
    if request.stop:
        out['stop_sequences'] = list(request.stop)
    if isinstance(body.get('user'), str):
        out['metadata'] = {'user_id': body['user'][:256]}
    if request.tools:
        out['tools'] = [_tool(t) for t in request.tools if t.get('type') == 'function']
        choice = _tool_choice(request.tool_choice, body.get('parallel_tool_calls'))
        if choice is not None:
            out['tool_choice'] = choice
    return out


def _tool(tool):
    fn = tool['function']
    out = {
        'name': fn['name'],
        'input_schema': fn.get('parameters') or {'type': 'object', 'properties': {}},
    }
    if fn.get('description'):
        out['description'] = fn['description']
    return out


def _tool_choice(choice, parallel):
    if isinstance(choice, dict):
        out = {'type': 'tool', 'name': choice['function']['name']}
    elif choice == 'required':
        out = {'type': 'any'}
    elif choice == 'none':
        return {'type': 'none'}
    else:
        out = {'type': 'auto'}
    if parallel is False:
        out['disable_parallel_tool_use'] = True
    return out


def _usage(usage):
    usage = usage if isinstance(usage, dict) else {}
    read = count(usage.get('cache_read_input_tokens'))
    write = count(usage.get('cache_creation_input_tokens'))
    prompt = count(usage.get('input_tokens')) + read + write
    completion = count(usage.get('output_tokens'))
    return {
        'prompt_tokens': prompt,
        'completion_tokens': completion,
        'total_tokens': prompt + completion,
        'prompt_tokens_details': {'cached_tokens': read, 'cache_write_tokens': write},
    }


def from_message(data):
    """A chat.completion dict for a Messages API response."""
    text, calls = [], []
    for block in data.get('content') or ():
        if block.get('type') == 'text':
            text.append(block.get('text', ''))
        elif block.get('type') == 'tool_use':
            calls.append(
                {
                    'id': block['id'],
                    'type': 'function',
                    'function': {
                        'name': block['name'],
                        'arguments': orjson.dumps(block.get('input') or {}).decode(),
                    },
                }
            )
    message = {
        'role': 'assistant',
        'content': ''.join(text) if text else None,
        'refusal': None,
    }
    if calls:
        message['tool_calls'] = calls
    return {
        'id': data.get('id', ''),
        'object': 'chat.completion',
        'created': 0,
        'model': data.get('model', ''),
        'choices': [
            {
                'index': 0,
                'message': message,
                'logprobs': None,
                'finish_reason': STOP_REASONS.get(data.get('stop_reason'), 'stop'),
            }
        ],
        'usage': _usage(data.get('usage')),
    }


class StreamTranslator:
    """Messages stream events in, chat.completion.chunk dicts out."""

    def __init__(self, created, fail):
        self.created = created
        self.fail = fail  # detail -> the exception that ends the stream
        self.id = ''
        self.model = ''
        self.usage = {}
        self.tool_index = {}  # content block index -> tool call index
        self.finished = False

    def _chunk(self, delta, finish=None):
        return {
            'id': self.id,
            'object': 'chat.completion.chunk',
            'created': self.created,
            'model': self.model,
            'choices': [
                {'index': 0, 'delta': delta, 'logprobs': None, 'finish_reason': finish}
            ],
        }

    def feed(self, event):
        """Chunks for one event (a list, often empty)."""
        kind = event.get('type')
        if kind == 'message_start':
            message = event.get('message') or {}
            self.id, self.model = message.get('id', ''), message.get('model', '')
            self.usage = dict(message.get('usage') or {})
            return [self._chunk({'role': 'assistant', 'content': ''})]
        if kind == 'content_block_start':
            block = event.get('content_block') or {}
            if block.get('type') == 'tool_use':
                index = self.tool_index[event['index']] = len(self.tool_index)
                return [
                    self._chunk(
                        {
                            'tool_calls': [
                                {
                                    'index': index,
                                    'id': block['id'],
                                    'type': 'function',
                                    'function': {
                                        'name': block['name'],
                                        'arguments': '',
                                    },
                                }
                            ]
                        }
                    )
                ]
            if block.get('type') == 'text' and block.get('text'):
                return [self._chunk({'content': block['text']})]
            return []
        if kind == 'content_block_delta':
            delta = event.get('delta') or {}
            if delta.get('type') == 'text_delta':
                return [self._chunk({'content': delta.get('text', '')})]
            if delta.get('type') == 'input_json_delta':
                index = self.tool_index.get(event.get('index'))
                if index is None:
                    return []
                return [
                    self._chunk(
                        {
                            'tool_calls': [
                                {
                                    'index': index,
                                    'function': {
                                        'arguments': delta.get('partial_json', '')
                                    },
                                }
                            ]
                        }
                    )
                ]
            return []  # thinking and signature deltas have no OpenAI equivalent
        if kind == 'message_delta':
            self.usage.update(event.get('usage') or {})
            reason = (event.get('delta') or {}).get('stop_reason')
            return [self._chunk({}, STOP_REASONS.get(reason, 'stop'))]
        if kind == 'message_stop':
            self.finished = True
            chunk = self._chunk({})
            chunk['choices'] = []
            chunk['usage'] = _usage(self.usage)
            return [chunk]
        if kind == 'error':
            error = event.get('error')
            if isinstance(error, dict):
                raise self.fail(f'{error.get("type", "")}: {error.get("message", "")}')
            raise self.fail(error)
        return []  # ping and events added to the API later


class AnthropicProvider(HttpProvider):
    type = 'anthropic'

    def __init__(self, config, **options):
        auth = {'x-api-key': config.api_key} if config.api_key else {}
        super().__init__(
            config, headers={'anthropic-version': VERSION, **auth}, **options
        )
        self._url = config.base_url + '/messages'

    def complete(self, request, model):
        data = self.post_json(self._url, to_messages(request, model))
        if data.get('type') != 'message':
            raise UpstreamFailed(f"Provider '{self.name}' answered without a message.")
        with self.reading():
            out = from_message(data)
        problem = completion_problem(out)
        if problem:
            raise self.protocol_error(problem)
        return out

    def stream(self, request, model):
        body = to_messages(request, model)
        body['stream'] = True
        return self._events(self.post_stream(self._url, body))

    def _events(self, resp):
        translator = StreamTranslator(int(time.time()), self.stream_failure)
        with closing(self.lines(resp, lambda: translator.finished)) as lines:
            for line in lines:
                if not line.startswith(b'data:'):
                    continue  # event names, comments and blank separators
                try:
                    event = orjson.loads(line[5:].strip())
                except orjson.JSONDecodeError:
                    raise UpstreamFailed(
                        f"Provider '{self.name}' sent a malformed stream event."
                    ) from None
                if not isinstance(event, dict):
                    raise self.protocol_error('a stream event that is not an object')
                with self.reading():
                    chunks = translator.feed(event)
                for chunk in chunks:
                    problem = chunk_problem(chunk)
                    if problem:
                        raise self.protocol_error(problem)
                    yield chunk
                if translator.finished:
                    break
