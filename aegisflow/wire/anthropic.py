"""Anthropic's Messages API and the gateway's chat form, both ways: one codec for
the inbound ``/v1/messages`` wire (a client speaks Anthropic) and for the
``anthropic`` provider adapter (an upstream speaks it). One stop-reason table, one
usage mapping each way, one ``tool_use`` block builder and one ``tool_use`` to tool
call conversion serve both.

Inbound (``to_chat_body``, `AnthropicWire`): the request is checked in Anthropic's
terms (messages naming the field, Anthropic's error envelope) and translated to
the chat form the pipeline serves; the answer goes back as a ``message`` or as
Anthropic's events:

- ``system`` (string or text blocks) -> a system message; ``user``/``assistant``
  turns with text, image (base64 or url), ``tool_use`` and ``tool_result`` blocks ->
  messages, assistant ``tool_calls`` and ``tool`` messages;
- ``tools`` (``input_schema``) and ``tool_choice`` (auto, any, tool, none,
  ``disable_parallel_tool_use``); ``max_tokens``, ``temperature``, ``top_p``,
  ``stop_sequences``, ``metadata.user_id``;
- the answer: ``text`` and ``tool_use`` blocks, ``stop_reason`` and usage (cached
  prompt tokens as ``cache_read_input_tokens``); streams: ``message_start``,
  ``content_block_start``/``delta``/``stop``, ``message_delta``, ``message_stop``;
  a failure mid-stream is an ``error`` event.
  ``top_k`` and ``thinking`` have no chat equivalent: checked, and dropped when the
  request is translated (an ``anthropic`` target gets the request untranslated:
  `aegisflow.wire.relay`); earlier thinking blocks are dropped too, and the images
  of a ``tool_result`` follow the tool's text as a user message.

Outbound (``to_messages``, ``from_message``, `StreamTranslator`): a chat request
becomes a Messages body (``system``/``developer`` -> ``system``; turns alternated;
images; tool calls and results; ``max_tokens`` default 4096, ``temperature`` capped
at 1, ``stop`` -> ``stop_sequences``, ``user`` -> ``metadata.user_id``; ``n`` > 1
refused); a ``message`` and its stream events become a ``chat.completion`` and
chunks (tool-call indexes counted over ``tool_use`` blocks only; ``ping`` skipped;
thinking deltas have no chat equivalent). Usage: Anthropic counts cache reads and
writes outside ``input_tokens``; the chat form counts them inside
``prompt_tokens`` and itemises them (``cached_tokens``, ``cache_write_tokens``).
"""

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.errors import anthropic_body
from aegisflow.wire.common import count

DEFAULT_MAX_TOKENS = 4096

# (Anthropic stop_reason, chat finish_reason): read left to right for Anthropic ->
# chat, and the first pair naming a finish reason for chat -> Anthropic
STOP = (
    ('end_turn', 'stop'),
    ('stop_sequence', 'stop'),
    ('max_tokens', 'length'),
    ('tool_use', 'tool_calls'),
    ('refusal', 'content_filter'),
    ('pause_turn', 'stop'),
    ('tool_use', 'function_call'),
)
_TO_CHAT = {}
_TO_ANTHROPIC = {}
for _anthropic, _chat in STOP:
    _TO_CHAT.setdefault(_anthropic, _chat)
    _TO_ANTHROPIC.setdefault(_chat, _anthropic)


def finish_reason_of(stop_reason):
    """The chat finish_reason for an Anthropic stop_reason (unknown: stop)."""
    return _TO_CHAT.get(stop_reason, 'stop') if isinstance(stop_reason, str) else 'stop'


def stop_reason_of(finish_reason):
    """The Anthropic stop_reason for a chat finish_reason (unknown: end_turn)."""
    if not isinstance(finish_reason, str):
        return 'end_turn'
    return _TO_ANTHROPIC.get(finish_reason, 'end_turn')


def usage_to_openai(usage):
    """Chat usage for Anthropic's: cache reads and writes counted in the prompt."""
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


def usage_from_openai(usage):
    """Anthropic usage for chat usage: cache reads and writes taken out again."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get('prompt_tokens_details')
    details = details if isinstance(details, dict) else {}
    cached = count(details.get('cached_tokens'))
    written = count(details.get('cache_write_tokens'))
    return {
        'input_tokens': max(0, count(usage.get('prompt_tokens')) - cached - written),
        'output_tokens': count(usage.get('completion_tokens')),
        'cache_read_input_tokens': cached,
        'cache_creation_input_tokens': written,
    }


def tool_use_block(call_id, name, arguments):
    """A ``tool_use`` content block (`arguments`: the decoded input)."""
    return {'type': 'tool_use', 'id': call_id, 'name': name, 'input': arguments}


def tool_call_of(block):
    """The chat tool call of a ``tool_use`` block (its input as JSON text)."""
    return {
        'id': block['id'],
        'type': 'function',
        'function': {
            'name': block['name'],
            'arguments': orjson.dumps(block.get('input') or {}).decode(),
        },
    }


# -- inbound: a client speaks Anthropic ---------------------------------------------

_IMAGE_TYPES = ('image/jpeg', 'image/png', 'image/gif', 'image/webp')
_THINKING = ('enabled', 'disabled', 'adaptive')
# Messages fields with no chat equivalent: passed to Anthropic, dropped elsewhere
NATIVE_ONLY = ('thinking', 'top_k')
# Anthropic's tool_choice types (besides a named tool) in OpenAI's words
_CHOICES = {'auto': 'auto', 'any': 'required', 'none': 'none'}


def _bad(param, message):
    return InvalidRequest(f'{param}: {message}', param=param)


def _text(block, param):
    if not isinstance(block.get('text'), str):
        raise _bad(f'{param}.text', 'expected a string')
    return block['text']


def _texts(blocks, param, default_type=None):
    """The text of each block of a list that may hold text blocks only."""
    out = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get('type', default_type) != 'text':
            raise _bad(f'{param}.{i}', 'expected a text block')
        out.append(_text(block, f'{param}.{i}'))
    return out


def _image(block, param):
    source = block.get('source')
    if not isinstance(source, dict):
        raise _bad(f'{param}.source', 'expected an object')
    if source.get('type') == 'base64':
        media = source.get('media_type')
        if media not in _IMAGE_TYPES:
            expected = ', '.join(_IMAGE_TYPES)
            raise _bad(f'{param}.source.media_type', f'expected one of {expected}')
        if not isinstance(source.get('data'), str):
            raise _bad(f'{param}.source.data', 'expected a base64 string')
        url = f'data:{media};base64,{source["data"]}'
    elif source.get('type') == 'url' and isinstance(source.get('url'), str):
        url = source['url']
    else:
        raise _bad(f'{param}.source.type', 'expected base64 or url')
    return {'type': 'image_url', 'image_url': {'url': url}}


def _tool_use(block, p):
    if not isinstance(block.get('id'), str) or not isinstance(block.get('name'), str):
        raise _bad(p, 'tool_use needs a string id and name')
    if block.get('input') is not None and not isinstance(block['input'], dict):
        raise _bad(f'{p}.input', 'expected an object')
    return tool_call_of(block)


def _tool_result(block, p, images):
    """The chat ``tool`` message of a ``tool_result`` block. NOTE: a chat tool
    message holds text only: the result's images go to `images`, for a user
    message right after the tool messages."""
    inner = block.get('content')
    if isinstance(inner, list):
        texts = []
        for k, part in enumerate(inner):
            kind = part.get('type') if isinstance(part, dict) else None
            if kind == 'image':
                images.append(_image(part, f'{p}.content.{k}'))
            elif kind == 'text':
                texts.append(_text(part, f'{p}.content.{k}'))
            else:
                raise _bad(f'{p}.content.{k}', 'expected a text or image block')
        inner = '\n'.join(texts)
    elif inner is None:
        inner = ''
    elif not isinstance(inner, str):
        raise _bad(f'{p}.content', 'expected a string or a list of blocks')
    if not isinstance(block.get('tool_use_id'), str):
        raise _bad(f'{p}.tool_use_id', 'expected a string')
    return {'role': 'tool', 'tool_call_id': block['tool_use_id'], 'content': inner}


def _split_blocks(content, role, param):
    """(content parts, tool calls, tool results) of one turn's blocks; the images
    of tool results come first among the parts."""
    parts, calls, results, images = [], [], [], []
    for j, block in enumerate(content):
        p = f'{param}.content.{j}'
        kind = block.get('type') if isinstance(block, dict) else None
        if kind == 'text':
            parts.append({'type': 'text', 'text': _text(block, p)})
        elif kind == 'image' and role == 'user':
            parts.append(_image(block, p))
        elif kind == 'tool_use' and role == 'assistant':
            calls.append(_tool_use(block, p))
        elif kind == 'tool_result' and role == 'user':
            results.append(_tool_result(block, p, images))
        elif kind not in ('thinking', 'redacted_thinking'):
            # NOTE: earlier thinking blocks are not sent on to other providers.
            raise _bad(f'{p}.type', f'unsupported block {kind!r:.40} in a {role} turn')
    return images + parts, calls, results


def _turn(turn, i):
    """OpenAI messages for one Anthropic turn."""
    param = f'messages.{i}'
    if not isinstance(turn, dict):
        raise _bad(param, 'expected an object')
    role = turn.get('role')
    if role not in ('user', 'assistant'):
        raise _bad(f'{param}.role', 'expected "user" or "assistant"')
    content = turn.get('content')
    if isinstance(content, str):
        return [{'role': role, 'content': content}]
    if not isinstance(content, list):
        raise _bad(f'{param}.content', 'expected a string or a list of blocks')
    parts, calls, results = _split_blocks(content, role, param)
    out = list(results)
    if role == 'assistant':
        message = {'role': 'assistant', 'content': parts or None}
        if calls:
            message['tool_calls'] = calls
        if parts or calls:
            out.append(message)
    elif parts:
        out.append({'role': 'user', 'content': parts})
    return out


def _system(body):
    system = body.get('system')
    if isinstance(system, list):
        system = '\n\n'.join(_texts(system, 'system', default_type='text'))
    if system is not None and not isinstance(system, str):
        raise _bad('system', 'expected a string or text blocks')
    return [{'role': 'system', 'content': system}] if system is not None else []


def check_native_only(body):
    """Anthropic's own fields that the chat form has no place for (`NATIVE_ONLY`):
    checked here, passed through to Anthropic, dropped (with a warning) for any
    other provider."""
    thinking = body.get('thinking')
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad('thinking', 'expected an object')
        if thinking.get('type') not in _THINKING:
            raise _bad('thinking.type', f'expected one of {", ".join(_THINKING)}')
        budget = thinking.get('budget_tokens')
        if ('budget_tokens' in thinking or thinking['type'] == 'enabled') and (
            not isinstance(budget, int) or isinstance(budget, bool) or budget < 1
        ):
            raise _bad('thinking.budget_tokens', 'expected an integer >= 1')
    top_k = body.get('top_k')
    if top_k is not None and (
        not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0
    ):
        raise _bad('top_k', 'expected a non-negative integer')


def dropped_fields(body):
    """The fields of a Messages body a translation to another provider drops."""
    return [key for key in NATIVE_ONLY if body.get(key) is not None]


def _required(body):
    check_native_only(body)
    model = body.get('model')
    if not isinstance(model, str) or not model:
        raise _bad('model', 'expected a model name')
    max_tokens = body.get('max_tokens')
    if (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or max_tokens < 1
    ):
        raise _bad('max_tokens', 'expected an integer >= 1 (it is required)')
    turns = body.get('messages')
    if not isinstance(turns, list) or not turns:
        raise _bad('messages', 'expected a non-empty list')
    _optional(body)
    return model, max_tokens, turns


def _optional(body):
    """Anthropic's own rules for the optional fields (the chat checks that follow
    the translation know OpenAI's ranges, not these)."""
    stream = body.get('stream')
    if stream is not None and not isinstance(stream, bool):
        raise _bad('stream', 'expected a boolean')
    for key in ('temperature', 'top_p'):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not 0 <= value <= 1
        ):
            raise _bad(key, 'expected a number from 0 to 1')
    stops = body.get('stop_sequences')
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(x, str) for x in stops)
    ):
        raise _bad('stop_sequences', 'expected a list of strings')
    metadata = body.get('metadata')
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad('metadata', 'expected an object')
        user = metadata.get('user_id')
        if user is not None and not isinstance(user, str):
            raise _bad('metadata.user_id', 'expected a string')


def to_chat_body(body):
    """The OpenAI chat body for an Anthropic Messages request (checked)."""
    model, max_tokens, turns = _required(body)
    messages = _system(body)
    for i, turn in enumerate(turns):
        messages.extend(_turn(turn, i))
    out = {
        'model': model,
        'messages': messages,
        'max_tokens': max_tokens,
        'stream': body.get('stream') is True,
    }
    if out['stream']:
        out['stream_options'] = {'include_usage': True}
    for key in ('temperature', 'top_p'):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get('stop_sequences') is not None:
        out['stop'] = body['stop_sequences']
    user = (body.get('metadata') or {}).get('user_id')
    if user is not None:
        out['user'] = user
    tools = body.get('tools')
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad('tools', 'expected a list')
        out['tools'] = [_tool(t, i) for i, t in enumerate(tools)]
    _tool_choice(body.get('tool_choice'), out)
    return out


def _tool(tool, i):
    if not isinstance(tool, dict):
        raise _bad(f'tools.{i}', 'expected an object')
    description = tool.get('description')
    if description is not None and not isinstance(description, str):
        raise _bad(f'tools.{i}.description', 'expected a string')
    schema = tool.get('input_schema')
    if schema is not None and not isinstance(schema, dict):
        raise _bad(f'tools.{i}.input_schema', 'expected an object')
    return {
        'type': 'function',
        'function': {
            'name': tool.get('name'),
            'description': description or '',
            'parameters': schema or {'type': 'object'},
        },
    }


def _tool_choice(choice, out):
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise _bad('tool_choice', 'expected an object')
    kind = choice.get('type')
    # NOTE: a tuple, not the dict: the client's type may be unhashable
    if kind not in ('auto', 'any', 'none', 'tool'):
        raise _bad('tool_choice.type', 'expected auto, any, none or tool')
    if not out.get('tools'):
        raise _bad('tool_choice', 'only allowed when tools are given')
    if kind == 'tool' and not isinstance(choice.get('name'), str):
        raise _bad('tool_choice.name', 'expected the name of one of the tools')
    disable = choice.get('disable_parallel_tool_use')
    if disable is not None and not isinstance(disable, bool):
        raise _bad('tool_choice.disable_parallel_tool_use', 'expected a boolean')
    if kind == 'tool':
        out['tool_choice'] = {'type': 'function', 'function': {'name': choice['name']}}
    else:
        out['tool_choice'] = _CHOICES[kind]
    if disable:
        out['parallel_tool_calls'] = False


class AnthropicWire:
    """Messages API objects and events on the wire."""

    content_type = 'text/event-stream'

    def __init__(self, chat):
        self.model = chat.model
        self.started = False
        self.block = -1  # index of the open content block
        self.block_kind = None
        self.tools = {}  # OpenAI tool-call index -> content block index
        self.stop_reason = None
        self.usage = {}
        self.relayed = False  # the events are the upstream's own

    def relay(self, event):
        """An event of a stream passed through (`aegisflow.wire.relay.Event`)."""
        self.relayed = True
        return event.encoded()

    def complete(self, data):
        if not isinstance(data, dict):
            return data.encoded()  # a message passed through (`wire.relay`)
        choice = (data.get('choices') or [{}])[0]
        message = choice.get('message') or {}
        content = []
        if message.get('content'):
            content.append({'type': 'text', 'text': message['content']})
        for call in message.get('tool_calls') or ():
            fn = call.get('function') or {}
            try:
                args = orjson.loads(fn.get('arguments') or '{}')
            except orjson.JSONDecodeError:
                args = {'_raw': fn.get('arguments')}
            content.append(tool_use_block(call.get('id'), fn.get('name'), args))
        return orjson.dumps(
            {
                'id': data.get('id') or 'msg_gateway',
                'type': 'message',
                'role': 'assistant',
                'model': data.get('model') or self.model,
                'content': content,
                'stop_reason': stop_reason_of(choice.get('finish_reason')),
                'stop_sequence': None,
                'usage': usage_from_openai(data.get('usage')),
            }
        )

    @staticmethod
    def _event(kind, data):
        data = dict(data, type=kind)
        return b'event: ' + kind.encode() + b'\ndata: ' + orjson.dumps(data) + b'\n\n'

    def _open(self, kind, extra):
        out = self._close()
        self.block += 1
        self.block_kind = kind
        block = {'type': kind, **extra}
        return out + self._event(
            'content_block_start', {'index': self.block, 'content_block': block}
        )

    def _close(self):
        if self.block_kind is None:
            return b''
        self.block_kind = None
        return self._event('content_block_stop', {'index': self.block})

    def chunk(self, chunk):
        out = b''
        if not self.started:
            self.started = True
            out += self._event(
                'message_start',
                {
                    'message': {
                        'id': chunk.get('id') or 'msg_gateway',
                        'type': 'message',
                        'role': 'assistant',
                        'model': chunk.get('model') or self.model,
                        'content': [],
                        'stop_reason': None,
                        'stop_sequence': None,
                        'usage': {'input_tokens': 0, 'output_tokens': 0},
                    }
                },
            )
        if chunk.get('usage'):
            self.usage = chunk['usage']
        for choice in chunk.get('choices') or ():
            delta = choice.get('delta') or {}
            if delta.get('content'):
                if self.block_kind != 'text':
                    out += self._open('text', {'text': ''})
                out += self._event(
                    'content_block_delta',
                    {
                        'index': self.block,
                        'delta': {'type': 'text_delta', 'text': delta['content']},
                    },
                )
            for call in delta.get('tool_calls') or ():
                index = call.get('index', 0)
                fn = call.get('function') or {}
                if index not in self.tools:
                    block = tool_use_block(call.get('id'), fn.get('name'), {})
                    del block['type']
                    out += self._open('tool_use', block)
                    self.tools[index] = self.block
                if fn.get('arguments'):
                    out += self._event(
                        'content_block_delta',
                        {
                            'index': self.tools[index],
                            'delta': {
                                'type': 'input_json_delta',
                                'partial_json': fn['arguments'],
                            },
                        },
                    )
            if choice.get('finish_reason'):
                self.stop_reason = stop_reason_of(choice['finish_reason'])
        return out or None

    def done(self):
        if self.relayed:
            return b''  # message_stop was relayed
        usage = usage_from_openai(self.usage)
        return (
            self._close()
            + self._event(
                'message_delta',
                {
                    'delta': {
                        'stop_reason': self.stop_reason or 'end_turn',
                        'stop_sequence': None,
                    },
                    'usage': {'output_tokens': usage['output_tokens']},
                },
            )
            + self._event('message_stop', {})
        )

    def error(self, err):
        return self._event('error', {'error': anthropic_body(err)['error']})


# -- outbound: an upstream speaks Anthropic -----------------------------------------


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


def _result_block(msg):
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
        blocks.append(tool_use_block(call['id'], fn['name'], arguments))
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
                [_result_block(msg)] if role == 'tool' else _blocks(msg.get('content')),
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
        out['tools'] = [
            _tool_def(t) for t in request.tools if t.get('type') == 'function'
        ]
        choice = _choice_of(request.tool_choice, body.get('parallel_tool_calls'))
        if choice is not None:
            out['tool_choice'] = choice
    return out


def _tool_def(tool):
    fn = tool['function']
    out = {
        'name': fn['name'],
        'input_schema': fn.get('parameters') or {'type': 'object', 'properties': {}},
    }
    if fn.get('description'):
        out['description'] = fn['description']
    return out


def _choice_of(choice, parallel):
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


def from_message(data):
    """A chat.completion dict for a Messages API response."""
    text, calls = [], []
    for block in data.get('content') or ():
        if block.get('type') == 'text':
            text.append(block.get('text', ''))
        elif block.get('type') == 'tool_use':
            calls.append(tool_call_of(block))
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
                'finish_reason': finish_reason_of(data.get('stop_reason')),
            }
        ],
        'usage': usage_to_openai(data.get('usage')),
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
            return [self._chunk({}, finish_reason_of(reason))]
        if kind == 'message_stop':
            self.finished = True
            chunk = self._chunk({})
            chunk['choices'] = []
            chunk['usage'] = usage_to_openai(self.usage)
            return [chunk]
        if kind == 'error':
            error = event.get('error')
            if isinstance(error, dict):
                raise self.fail(f'{error.get("type", "")}: {error.get("message", "")}')
            raise self.fail(error)
        return []  # ping and events added to the API later


# -- a whole message and its stream ----------------------------------------------------

# the text field each delta type adds to, by the block type it belongs to
_DELTA_FIELDS = {
    'text_delta': 'text',
    'thinking_delta': 'thinking',
    'signature_delta': 'signature',
}
_PIECE = 256  # characters of text per replayed delta


def message_of_events(events):
    """The ``message`` a complete Messages stream (the `data` of its events) adds
    up to, as the non-streamed API would have answered it."""
    message, blocks, partial = None, {}, {}
    for data in events:
        kind = data.get('type')
        if kind == 'message_start':
            message = dict(data['message'])
            message['content'] = []
        elif kind == 'content_block_start':
            blocks[data['index']] = dict(data['content_block'])
        elif kind == 'content_block_delta':
            _add_delta(blocks[data['index']], data['delta'], partial, data['index'])
        elif kind == 'content_block_stop' and data['index'] in partial:
            text = partial.pop(data['index'])
            blocks[data['index']]['input'] = orjson.loads(text) if text else {}
        elif kind == 'message_delta':
            message.update(data.get('delta') or {})
            message['usage'] = {**(message.get('usage') or {}), **data['usage']}
    message['content'] = [blocks[i] for i in sorted(blocks)]
    return message


def _add_delta(block, delta, partial, index):
    kind = delta.get('type')
    if kind == 'input_json_delta':
        partial[index] = partial.get(index, '') + delta.get('partial_json', '')
    elif kind == 'citations_delta':
        block.setdefault('citations', []).append(delta['citation'])
    elif kind in _DELTA_FIELDS:
        name = _DELTA_FIELDS[kind]
        block[name] = block.get(name, '') + delta.get(name, '')


def events_of_message(message):
    """The `data` of the events of a Messages stream that replays a whole
    ``message``: start, each content block (its text in pieces, a tool's input as
    one JSON delta, a thinking block's text then its signature), the stop reason
    with the usage, stop."""
    usage = message.get('usage') or {}
    start = {k: v for k, v in message.items() if k not in ('content', 'usage')}
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start['usage'] = {**usage, 'output_tokens': min(1, usage.get('output_tokens', 0))}
    yield {'type': 'message_start', 'message': start}
    for index, block in enumerate(message.get('content') or ()):
        yield from _block_events(index, block)
    yield {
        'type': 'message_delta',
        'delta': {
            'stop_reason': message.get('stop_reason'),
            'stop_sequence': message.get('stop_sequence'),
        },
        'usage': {'output_tokens': usage.get('output_tokens', 0)},
    }
    yield {'type': 'message_stop'}


def _block_events(index, block):
    kind = block.get('type')

    def delta(body):
        return {'type': 'content_block_delta', 'index': index, 'delta': body}

    if kind == 'text':
        yield {
            'type': 'content_block_start',
            'index': index,
            'content_block': {'type': 'text', 'text': ''},
        }
        text = block.get('text', '')
        for i in range(0, len(text), _PIECE):
            yield delta({'type': 'text_delta', 'text': text[i : i + _PIECE]})
        for citation in block.get('citations') or ():
            yield delta({'type': 'citations_delta', 'citation': citation})
    elif kind == 'thinking':
        yield {
            'type': 'content_block_start',
            'index': index,
            'content_block': {'type': 'thinking', 'thinking': '', 'signature': ''},
        }
        yield delta({'type': 'thinking_delta', 'thinking': block.get('thinking', '')})
        yield delta(
            {'type': 'signature_delta', 'signature': block.get('signature', '')}
        )
    elif kind in ('tool_use', 'server_tool_use', 'mcp_tool_use'):
        yield {
            'type': 'content_block_start',
            'index': index,
            'content_block': {**block, 'input': {}},
        }
        yield delta(
            {
                'type': 'input_json_delta',
                'partial_json': orjson.dumps(block.get('input') or {}).decode(),
            }
        )
    else:  # NOTE: redacted thinking, tool results: whole in their start event
        yield {'type': 'content_block_start', 'index': index, 'content_block': block}
    yield {'type': 'content_block_stop', 'index': index}
