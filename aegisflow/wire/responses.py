"""OpenAI's Responses API (``POST /v1/responses``) and the gateway's chat form.

Passed through (`ResponsesNative`) to the providers that speak it (``openai``, and
``openai_compatible`` with ``responses: true``): the body as the client sent it,
only ``model`` replaced; the answer and its events as the upstream sent them,
unless an output policy rewrote a text (`ResponsesRelayGuard`); usage read from the
response object or the ``response.completed`` event.

Translated for every other target (``to_chat_body`` in, `ResponsesWire` out):

- ``instructions`` -> a system message; ``input`` as a string (one user message)
  or a list of items: messages (``input_text``, ``input_image``, ``input_file``;
  an assistant's ``output_text`` and ``refusal``), ``function_call`` (assistant
  tool calls, consecutive calls in one message) and ``function_call_output``
  (tool messages); ``reasoning`` items are dropped;
- ``tools`` of type ``function``; ``tool_choice`` (auto, none, required, a named
  function); ``max_output_tokens``, ``temperature``, ``top_p``, ``user``,
  ``parallel_tool_calls``, ``reasoning.effort``; ``text.format`` (``json_schema``
  and ``json_object`` -> ``response_format``);
- the answer: a ``response`` with a ``message`` item (``output_text``, or
  ``refusal``) and ``function_call`` items; ``incomplete`` with the reason when
  the output hit ``max_output_tokens`` or a content filter; usage with cached and
  reasoning tokens. Streams: ``response.created``, ``response.in_progress``, per
  item ``response.output_item.added``, ``response.content_part.added``,
  ``response.output_text.delta``/``.done``, ``response.content_part.done``,
  ``response.function_call_arguments.delta``/``.done``,
  ``response.output_item.done``, then ``response.completed`` (or
  ``response.incomplete``); a stream cut after its first byte ends with
  ``response.failed``, never ``response.completed``.

Built-in tools the gateway cannot run (`BUILT_IN`) are refused for translated
targets, naming the tool.
"""

import re
import secrets
import time

import orjson

from aegisflow.chat_request import parse_chat_request
from aegisflow.errors import InvalidRequest
from aegisflow.policy.walk import response_object_fields
from aegisflow.wire.common import count
from aegisflow.wire.relay import Event
from aegisflow.wire.relay import Held
from aegisflow.wire.relay import Native

# tools the provider runs itself: there is no chat equivalent to translate to
BUILT_IN = (
    'web_search', 'web_search_preview', 'web_search_preview_2025_03_11',
    'file_search', 'computer_use', 'computer_use_preview', 'code_interpreter',
    'image_generation', 'mcp', 'local_shell', 'shell', 'apply_patch',
)  # fmt: skip
_ROLES = ('user', 'assistant', 'system', 'developer')
_CHOICES = ('auto', 'none', 'required')
_EFFORTS = ('minimal', 'low', 'medium', 'high')
_NAME = re.compile(r'[A-Za-z0-9_\-]{1,64}\Z')


def new_id(prefix):
    return f'{prefix}_{secrets.token_hex(24)}'


def _bad(param, message):
    return InvalidRequest(f"Invalid '{param}': {message}", param=param)


def _type_name(value):
    if isinstance(value, bool):
        return 'a boolean'
    return {
        str: 'a string',
        int: 'an integer',
        float: 'a number',
        list: 'an array',
        dict: 'an object',
        type(None): 'null',
    }.get(type(value), type(value).__name__)


def _expect(body, key, types, words, param=None):
    value = body.get(key)
    if value is None:
        return None
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        param = param or key
        raise InvalidRequest(
            f"Invalid type for '{param}': expected {words}, but got "
            f'{_type_name(value)} instead.',
            param=param,
            code='invalid_type',
        )
    return value


def check(body):
    """Check a Responses request body (OpenAI's messages, naming the field)."""
    model = body.get('model')
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "Missing required parameter: 'model'.",
            param='model',
            code='missing_required_parameter',
        )
    if body.get('input') is None and not body.get('previous_response_id'):
        raise InvalidRequest(
            "Missing required parameter: 'input'.",
            param='input',
            code='missing_required_parameter',
        )
    _expect(body, 'input', (str, list), 'a string or an array')
    _expect(body, 'instructions', str, 'a string')
    _expect(body, 'previous_response_id', str, 'a string')
    for key in ('stream', 'store', 'parallel_tool_calls', 'background'):
        _expect(body, key, bool, 'a boolean')
    for key in ('text', 'metadata', 'reasoning'):
        _expect(body, key, dict, 'an object')
    _expect(body, 'tools', list, 'an array')
    _expect(body, 'user', str, 'a string')
    tokens = _expect(body, 'max_output_tokens', int, 'an integer')
    if tokens is not None and not 1 <= tokens < 1 << 31:
        raise _bad('max_output_tokens', 'expected an integer from 1 to 2147483647.')
    for key, top in (('temperature', 2), ('top_p', 1)):
        value = _expect(body, key, (int, float), 'a number')
        if value is not None and not 0 <= value <= top:
            raise _bad(key, f'expected a number from 0 to {top}.')
    effort = (body.get('reasoning') or {}).get('effort')
    if effort is not None and effort not in _EFFORTS:
        raise _bad('reasoning.effort', f'expected one of {", ".join(_EFFORTS)}.')
    if body.get('background'):
        raise _bad('background', 'background responses are not supported.')
    for i, tool in enumerate(body.get('tools') or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get('type'), str):
            raise _bad(f'tools[{i}]', 'expected a tool object with a type.')


def built_in_tools(body):
    """The built-in tools a request asks for (types, in order)."""
    return [t['type'] for t in body.get('tools') or () if t['type'] in BUILT_IN]


def _structured(body):
    """Whether a request asks for structured output (JSON)."""
    fmt = (body.get('text') or {}).get('format')
    return isinstance(fmt, dict) and fmt.get('type') in ('json_schema', 'json_object')


def built_in_refusal(body):
    """The error for a request with built-in tools that no target can run."""
    tool = built_in_tools(body)[0]
    return InvalidRequest(
        f"The built-in tool '{tool[:40]}' is not available for this model: "
        'no target of it runs built-in tools.',
        param='tools',
    )


# -- request: Responses -> chat ---------------------------------------------------


def _part(part, role, param):
    kind = part.get('type') if isinstance(part, dict) else None
    if kind in ('input_text', 'output_text', 'text'):
        text = part.get('text')
        if not isinstance(text, str):
            raise _bad(f'{param}.text', 'expected a string.')
        return {'type': 'text', 'text': text}
    if kind == 'refusal' and isinstance(part.get('refusal'), str):
        return {'type': 'text', 'text': part['refusal']}
    if kind == 'input_image' and role == 'user':
        url = part.get('image_url')
        if not isinstance(url, str):
            raise _bad(
                f'{param}.image_url',
                'expected an image URL (file_id images cannot be translated).',
            )
        image = {'url': url}
        if 'detail' in part:
            if part['detail'] not in ('low', 'high', 'auto'):
                raise _bad(f'{param}.detail', 'expected low, high or auto.')
            image['detail'] = part['detail']
        return {'type': 'image_url', 'image_url': image}
    if kind == 'input_file' and role == 'user':
        file = {k: part[k] for k in ('file_data', 'file_id', 'filename') if k in part}
        if not file:
            raise _bad(param, 'expected file_data or file_id.')
        return {'type': 'file', 'file': file}
    raise _bad(
        f'{param}.type', f'unsupported content {kind!r:.40} in a {role} message.'
    )


def _message(item, param):
    role = item.get('role')
    if role not in _ROLES:
        raise _bad(f'{param}.role', 'expected user, assistant, system or developer.')
    content = item.get('content')
    if isinstance(content, str):
        return {'role': role, 'content': content}
    if not isinstance(content, list):
        raise _bad(f'{param}.content', 'expected a string or an array of parts.')
    parts = [_part(p, role, f'{param}.content[{j}]') for j, p in enumerate(content)]
    if role != 'user':  # the chat form's other roles hold text
        return {'role': role, 'content': ''.join(p.get('text', '') for p in parts)}
    return {'role': role, 'content': parts}


def _function_call(item, param, messages):
    for key in ('call_id', 'name', 'arguments'):
        if not isinstance(item.get(key), str):
            raise _bad(f'{param}.{key}', 'expected a string.')
    call = {
        'id': item['call_id'],
        'type': 'function',
        'function': {'name': item['name'], 'arguments': item['arguments']},
    }
    last = messages[-1] if messages else None
    if last is not None and last['role'] == 'assistant' and 'tool_calls' in last:
        last['tool_calls'].append(call)
    elif last is not None and last['role'] == 'assistant' and not last.get('content'):
        last['tool_calls'] = [call]
    else:
        messages.append({'role': 'assistant', 'content': None, 'tool_calls': [call]})


def _function_output(item, param):
    if not isinstance(item.get('call_id'), str):
        raise _bad(f'{param}.call_id', 'expected a string.')
    output = item.get('output')
    if isinstance(output, list):
        texts = []
        for j, part in enumerate(output):
            if not isinstance(part, dict) or part.get('type') != 'input_text':
                raise _bad(f'{param}.output[{j}]', 'expected an input_text part.')
            if not isinstance(part.get('text'), str):
                raise _bad(f'{param}.output[{j}].text', 'expected a string.')
            texts.append(part['text'])
        output = ''.join(texts)

    if not isinstance(output, str):
        raise _bad(f'{param}.output', 'expected a string or an array of parts.')
    return {'role': 'tool', 'tool_call_id': item['call_id'], 'content': output}


def _items(items, messages):
    for i, item in enumerate(items):
        param = f'input[{i}]'
        if not isinstance(item, dict):
            raise _bad(param, 'expected an object.')
        kind = item.get('type', 'message')
        if kind == 'message':
            messages.append(_message(item, param))
        elif kind == 'function_call':
            _function_call(item, param, messages)
        elif kind == 'function_call_output':
            messages.append(_function_output(item, param))
        elif kind != 'reasoning':
            raise _bad(
                f'{param}.type',
                f'{kind!r:.40} items cannot be translated to this model.',
            )


def _tool(tool, i):
    if tool.get('type') != 'function':
        raise _bad(f'tools[{i}].type', 'expected function or a built-in tool.')
    if not isinstance(tool.get('name'), str) or not _NAME.match(tool['name']):
        raise _bad(
            f'tools[{i}].name', 'expected a name of 1 to 64 letters, digits, _ or -.'
        )
    for key, types, words in (
        ('description', str, 'a string'),
        ('parameters', dict, 'an object'),
        ('strict', bool, 'a boolean'),
    ):
        _expect(tool, key, types, words, f'tools[{i}].{key}')
    function = {'name': tool['name']}
    for key in ('description', 'parameters', 'strict'):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {'type': 'function', 'function': function}


def _tool_choice(choice):
    if choice is None or choice in _CHOICES:
        return choice
    if isinstance(choice, dict) and choice.get('type') == 'function':
        if isinstance(choice.get('name'), str):
            return {'type': 'function', 'function': {'name': choice['name']}}
    raise _bad('tool_choice', 'expected auto, none, required or a named function.')


def _text_format(text, out):
    fmt = (text or {}).get('format')
    if fmt is None:
        return
    kind = fmt.get('type') if isinstance(fmt, dict) else None
    if kind == 'json_schema':
        for key, types, words in (
            ('name', str, 'a string'),
            ('schema', dict, 'an object'),
            ('strict', bool, 'a boolean'),
            ('description', str, 'a string'),
        ):
            _expect(fmt, key, types, words, f'text.format.{key}')
        if not isinstance(fmt.get('name'), str) or not _NAME.match(fmt['name']):
            raise _bad(
                'text.format.name',
                'expected a name of 1 to 64 letters, digits, _ or -.',
            )
        if not isinstance(fmt.get('schema'), dict):
            raise _bad('text.format.schema', 'expected a JSON schema object.')
        schema = {
            k: fmt[k] for k in ('name', 'schema', 'strict', 'description') if k in fmt
        }
        out['response_format'] = {'type': 'json_schema', 'json_schema': schema}
    elif kind == 'json_object':
        out['response_format'] = {'type': 'json_object'}
    elif kind != 'text':
        raise _bad('text.format.type', 'expected text, json_schema or json_object.')


def to_chat_body(body, history=()):
    """The chat body for a Responses request that continues `history` (the chat
    messages of the response it names as previous, if any)."""
    check(body)
    messages = []
    if body.get('instructions'):
        messages.append({'role': 'system', 'content': body['instructions']})
    messages.extend(history)
    given = body.get('input')
    if isinstance(given, str):
        messages.append({'role': 'user', 'content': given})
    elif given:
        _items(given, messages)
    if not messages:
        raise _bad('input', 'expected at least one input item.')
    out = {'model': body['model'], 'messages': messages}
    if body.get('max_output_tokens') is not None:
        out['max_tokens'] = body['max_output_tokens']
    for key in ('temperature', 'top_p', 'user', 'parallel_tool_calls'):
        if body.get(key) is not None:
            out[key] = body[key]
    effort = (body.get('reasoning') or {}).get('effort')
    if effort is not None:
        out['reasoning_effort'] = effort
    tools = body.get('tools')
    if tools:
        # NOTE: built-in tools have no chat form: a request with any goes only to
        # targets that run them (`ResponsesNative.allows`)
        out['tools'] = [
            _tool(t, i) for i, t in enumerate(tools) if t['type'] not in BUILT_IN
        ] or None
        if out['tools'] is None:
            del out['tools']
    choice = _tool_choice(body.get('tool_choice'))
    if choice is not None:
        out['tool_choice'] = choice
    _text_format(body.get('text'), out)
    if body.get('stream') is True:
        out['stream'] = True
        out['stream_options'] = {'include_usage': True}
    return out


# -- usage -------------------------------------------------------------------------


def usage_to_chat(usage):
    """Chat usage for a Responses usage object."""
    usage = usage if isinstance(usage, dict) else {}
    inp = count(usage.get('input_tokens'))
    out = count(usage.get('output_tokens'))
    cached = (usage.get('input_tokens_details') or {}).get('cached_tokens')
    reasoning = (usage.get('output_tokens_details') or {}).get('reasoning_tokens')
    return {
        'prompt_tokens': inp,
        'completion_tokens': out,
        'total_tokens': inp + out,
        'prompt_tokens_details': {'cached_tokens': count(cached)},
        'completion_tokens_details': {'reasoning_tokens': count(reasoning)},
    }


def usage_from_chat(usage):
    """Responses usage for a chat usage object."""
    usage = usage if isinstance(usage, dict) else {}
    prompt = count(usage.get('prompt_tokens'))
    completion = count(usage.get('completion_tokens'))
    cached = (usage.get('prompt_tokens_details') or {}).get('cached_tokens')
    reasoning = (usage.get('completion_tokens_details') or {}).get('reasoning_tokens')
    return {
        'input_tokens': prompt,
        'input_tokens_details': {'cached_tokens': count(cached)},
        'output_tokens': completion,
        'output_tokens_details': {'reasoning_tokens': count(reasoning)},
        'total_tokens': prompt + completion,
    }


# -- passed through ---------------------------------------------------------------


_FINAL = ('response.completed', 'response.incomplete', 'response.failed')


class ResponsesNative(Native):
    """A ``/v1/responses`` request as the client sent it, for the providers that
    speak the Responses API. `held_by`: the provider that holds the response this
    one continues (``previous_response_id``), the only one it may go to;
    `translate`: it continues a response the gateway holds, so it is translated
    for every target.

    A target it would be translated for must be able to: no built-in tools, and
    structured output (``text.format``) only for providers that honour
    ``response_format``."""

    __slots__ = ('held_by', 'translate')
    kind = 'responses'
    cacheable = True  # its answers passed through may be cached (`assemble`, `replay`)
    answer_kind = 'response'

    def __init__(self, raw, body, held_by=None, translate=False):
        super().__init__(raw, body, {})
        self.held_by = held_by
        self.translate = translate

    def chat_form(self):
        return parse_chat_request(to_chat_body(self.body))

    def relays(self, provider):
        return not self.translate and self.kind in provider.relays

    def allows(self, provider):
        if self.held_by is not None:
            return provider.name == self.held_by
        if self.relays(provider):
            return True
        return not built_in_tools(self.body) and (
            provider.structured_output or not _structured(self.body)
        )

    def refusal(self):
        if self.held_by is not None:
            return InvalidRequest(
                f"The response named in 'previous_response_id' is held by provider "
                f"'{self.held_by}', which no target of this model is.",
                param='previous_response_id',
            )
        if built_in_tools(self.body):
            return built_in_refusal(self.body)
        kind = self.body['text']['format']['type']
        return InvalidRequest(
            f"text.format: no target of this model can honour '{kind}' output.",
            param='text.format',
        )

    @staticmethod
    def usage(data):
        return usage_to_chat(data.get('usage'))

    @staticmethod
    def fields(data):
        return response_object_fields(data)

    @staticmethod
    def model_of(event):
        response = event.data.get('response')
        return response.get('model') if isinstance(response, dict) else None

    @staticmethod
    def assemble(events):
        """The response object a stream ended with (its ``response.completed`` or
        ``response.incomplete`` event), or None when it ended otherwise."""
        for event in reversed(events):
            data = event.data
            if data.get('type') in _FINAL and isinstance(data.get('response'), dict):
                return data['response']
        return None

    @staticmethod
    def replay(response):
        """A stream of `Event`s that replays a whole response object."""
        return (Event(None, data) for data in events_of_response(response))

    @staticmethod
    def meter():
        return _meter

    @staticmethod
    def guard(stream_guard):
        return ResponsesRelayGuard(stream_guard)


def _meter(event):
    data = event.data
    kind = data['type']
    if kind == 'response.output_text.delta':
        delta = data.get('delta')
        return None, delta if isinstance(delta, str) else None
    if kind in _FINAL:
        response = data.get('response')
        if isinstance(response, dict) and isinstance(response.get('usage'), dict):
            return usage_to_chat(response['usage']), None
    return None, None


class ResponsesRelayGuard:
    """Output policies over a relayed Responses stream: each output text and each
    function call's arguments goes through a window of `guard`; where a policy
    rewrote one, its deltas are rewritten, and so are the ``.done`` events, the
    item and the final response that repeat it."""

    __slots__ = ('guard', 'held', 'final')

    def __init__(self, guard):
        self.guard = guard
        self.held = {}  # (item id, content index or None) -> Held
        self.final = {}  # the same keys -> the text as sent, where rewritten

    def _held(self, data, key, kind):
        held = self.held.get(key)
        if held is None:
            path = (
                f'output[{data.get("output_index")}].content[{key[1]}].text'
                if key[1] is not None
                else f'output[{data.get("output_index")}].arguments'
            )
            held = self.held[key] = Held(self.guard.window(path), _delta(data, kind))
        return held

    def filter(self, events):
        for event in events:
            data = event.data
            kind = data['type']
            if kind == 'response.output_text.delta':
                key = (data.get('item_id'), data.get('content_index'))
            elif kind == 'response.function_call_arguments.delta':
                key = (data.get('item_id'), None)
            else:
                yield from self._other(event, data, kind)
                continue
            text = data.get('delta')
            if isinstance(text, str):
                yield from self._held(data, key, kind).push(event, text)
            else:
                yield event

    def _other(self, event, data, kind):
        if kind == 'response.output_text.done':
            key, field = (data.get('item_id'), data.get('content_index')), 'text'
        elif kind == 'response.function_call_arguments.done':
            key, field = (data.get('item_id'), None), 'arguments'
        else:
            if self.final and _rewrite_items(data, self.final):
                event = Event(None, data)
            yield event
            return
        held = self.held.pop(key, None)
        if held is not None:
            yield from held.finish()
            if held.rewritten:
                self.final[key] = held.text_sent
                data[field] = held.text_sent
                event = Event(None, data)
        yield event


def _delta(data, kind):
    base = {
        k: data[k] for k in ('item_id', 'output_index', 'content_index') if k in data
    }

    def make(text):
        out = {'type': kind, **base, 'delta': text}
        if kind == 'response.output_text.delta':
            out['logprobs'] = []
        out['sequence_number'] = data.get('sequence_number', 0)
        return Event(None, out)

    return make


def _rewrite_items(data, final):
    """Put the rewritten texts into the items and response an event repeats;
    whether any was."""
    changed = False
    items = []
    if isinstance(data.get('item'), dict):
        items.append(data['item'])
    if isinstance(data.get('part'), dict):
        key = (data.get('item_id'), data.get('content_index'))
        if key in final and 'text' in data['part']:
            data['part']['text'] = final[key]
            changed = True
    response = data.get('response')
    if isinstance(response, dict) and isinstance(response.get('output'), list):
        items.extend(i for i in response['output'] if isinstance(i, dict))
    for item in items:
        item_id = item.get('id')
        if (item_id, None) in final and 'arguments' in item:
            item['arguments'] = final[(item_id, None)]
            changed = True
        for j, part in enumerate(item.get('content') or ()):
            if (item_id, j) in final and isinstance(part, dict):
                part['text'] = final[(item_id, j)]
                changed = True
    return changed


# -- answer: chat -> Responses ----------------------------------------------------


def _output_of(message):
    """The output items of a chat answer's message."""
    out = []
    content, refusal = message.get('content'), message.get('refusal')
    if content or refusal:
        part = (
            {'type': 'output_text', 'text': content, 'annotations': [], 'logprobs': []}
            if content
            else {'type': 'refusal', 'refusal': refusal}
        )
        out.append(
            {
                'id': new_id('msg'),
                'type': 'message',
                'status': 'completed',
                'role': 'assistant',
                'content': [part],
            }
        )
    for call in message.get('tool_calls') or ():
        fn = call.get('function') or {}
        out.append(
            {
                'id': new_id('fc'),
                'type': 'function_call',
                'status': 'completed',
                'call_id': call.get('id') or new_id('call'),
                'name': fn.get('name') or '',
                'arguments': fn.get('arguments') or '',
            }
        )
    return out


def _status_of(finish_reason):
    """(status, incomplete_details) for a chat finish reason."""
    if finish_reason == 'length':
        return 'incomplete', {'reason': 'max_output_tokens'}
    if finish_reason == 'content_filter':
        return 'incomplete', {'reason': 'content_filter'}
    return 'completed', None


def assistant_message(output):
    """The chat message a later turn sees for a response's output items."""
    text, calls = [], []
    for item in output:
        if item['type'] == 'message':
            for part in item['content']:
                text.append(part.get('text') or part.get('refusal') or '')
        elif item['type'] == 'function_call':
            calls.append(
                {
                    'id': item['call_id'],
                    'type': 'function',
                    'function': {'name': item['name'], 'arguments': item['arguments']},
                }
            )
    message = {'role': 'assistant', 'content': ''.join(text) or None}
    if calls:
        message['tool_calls'] = calls
    return message


class ResponsesWire:
    """Response objects and events on the wire, for a translated answer or one
    passed through. `on_done(response)`: called with a translated response
    object once it is complete, before it is sent (to store it); `on_upstream(id)`:
    called with the id of a response an upstream holds, when it is first seen."""

    content_type = 'text/event-stream'

    def __init__(self, body, on_done, on_upstream):
        self.body = body
        self.on_done = on_done
        self.on_upstream = on_upstream
        self.id = new_id('resp')
        self.created_at = int(time.time())
        self.seq = 0
        self.relayed = False
        self.last = None  # the latest response object a relayed stream showed
        self.model = body.get('model')
        self.output = []  # the items of a translated stream, in order
        self.text = None  # the open message item: [item, text so far]
        self.calls = {}  # chat tool-call index -> [item, arguments so far]
        self.finish_reason = None
        self.usage = None
        self.started = False

    def response(self, status, output, usage, incomplete=None, error=None):
        body = self.body
        return {
            'id': self.id,
            'object': 'response',
            'created_at': self.created_at,
            'status': status,
            'background': False,
            'error': error,
            'incomplete_details': incomplete,
            'instructions': body.get('instructions'),
            'max_output_tokens': body.get('max_output_tokens'),
            'model': self.model,
            'output': output,
            'parallel_tool_calls': body.get('parallel_tool_calls', True),
            'previous_response_id': body.get('previous_response_id'),
            'reasoning': {'effort': None, 'summary': None},
            'store': body.get('store', True),
            'temperature': body.get('temperature', 1.0),
            'text': body.get('text') or {'format': {'type': 'text'}},
            'tool_choice': body.get('tool_choice', 'auto'),
            'tools': body.get('tools') or [],
            'top_p': body.get('top_p', 1.0),
            'truncation': body.get('truncation', 'disabled'),
            'usage': usage,
            'user': body.get('user'),
            'metadata': body.get('metadata') or {},
        }

    # -- complete answers

    def complete(self, data):
        if not isinstance(data, dict) or data.get('object') != 'chat.completion':
            response = data.data
            if isinstance(response.get('id'), str):
                self.on_upstream(response['id'])
            return data.encoded()  # passed through (`wire.relay.Relayed`)
        choice = (data.get('choices') or [{}])[0]
        status, incomplete = _status_of(choice.get('finish_reason'))
        self.model = data.get('model') or self.model
        response = self.response(
            status,
            _output_of(choice.get('message') or {}),
            usage_from_chat(data.get('usage')),
            incomplete,
        )
        self.on_done(response)
        return orjson.dumps(response)

    # -- streams

    def _event(self, kind, data):
        data = {'type': kind, **data, 'sequence_number': self.seq}
        self.seq += 1
        return b'event: ' + kind.encode() + b'\ndata: ' + orjson.dumps(data) + b'\n\n'

    def relay(self, event):
        """An event of a stream passed through (`aegisflow.wire.relay.Event`)."""
        self.relayed = True
        data = event.data
        response = data.get('response')
        if isinstance(response, dict):
            if self.last is None and isinstance(response.get('id'), str):
                self.on_upstream(response['id'])
            self.last = response
        seq = data.get('sequence_number')
        if isinstance(seq, int):
            self.seq = seq + 1
        return event.encoded()

    def chunk(self, chunk):
        out = b''
        if not self.started:
            self.started = True
            self.model = chunk.get('model') or self.model
            skeleton = self.response('in_progress', [], None)
            out += self._event('response.created', {'response': skeleton})
            out += self._event('response.in_progress', {'response': skeleton})
        if chunk.get('usage'):
            self.usage = chunk['usage']
        for choice in chunk.get('choices') or ():
            delta = choice.get('delta') or {}
            if delta.get('content'):
                out += self._text(delta['content'])
            for call in delta.get('tool_calls') or ():
                out += self._call(call)
            if choice.get('finish_reason'):
                self.finish_reason = choice['finish_reason']
        return out or None

    def _text(self, text):
        out = b''
        if self.text is None:
            item = {
                'id': new_id('msg'),
                'type': 'message',
                'status': 'in_progress',
                'role': 'assistant',
                'content': [],
            }
            self.text = [item, '', len(self.output)]
            self.output.append(item)
            out += self._event(
                'response.output_item.added',
                {'output_index': self.text[2], 'item': item},
            )
            out += self._event(
                'response.content_part.added',
                {
                    'item_id': item['id'],
                    'output_index': self.text[2],
                    'content_index': 0,
                    'part': {'type': 'output_text', 'text': '', 'annotations': []},
                },
            )
        self.text[1] += text
        return out + self._event(
            'response.output_text.delta',
            {
                'item_id': self.text[0]['id'],
                'output_index': self.text[2],
                'content_index': 0,
                'delta': text,
                'logprobs': [],
            },
        )

    def _call(self, call):
        out = b''
        index = call.get('index', 0)
        fn = call.get('function') or {}
        open_call = self.calls.get(index)
        if open_call is None:
            out += self._close_text()
            item = {
                'id': new_id('fc'),
                'type': 'function_call',
                'status': 'in_progress',
                'call_id': call.get('id') or new_id('call'),
                'name': fn.get('name') or '',
                'arguments': '',
            }
            open_call = self.calls[index] = [item, '', len(self.output)]
            self.output.append(item)
            out += self._event(
                'response.output_item.added',
                {'output_index': open_call[2], 'item': item},
            )
        if fn.get('arguments'):
            open_call[1] += fn['arguments']
            out += self._event(
                'response.function_call_arguments.delta',
                {
                    'item_id': open_call[0]['id'],
                    'output_index': open_call[2],
                    'delta': fn['arguments'],
                },
            )
        return out

    def _close_text(self):
        if self.text is None:
            return b''
        item, text, index = self.text
        self.text = None
        part = {'type': 'output_text', 'text': text, 'annotations': [], 'logprobs': []}
        item['content'] = [part]
        item['status'] = 'completed'
        where = {'item_id': item['id'], 'output_index': index, 'content_index': 0}
        return (
            self._event(
                'response.output_text.done', {**where, 'text': text, 'logprobs': []}
            )
            + self._event('response.content_part.done', {**where, 'part': part})
            + self._event(
                'response.output_item.done', {'output_index': index, 'item': item}
            )
        )

    def _close_calls(self):
        out = b''
        for index in sorted(self.calls):
            item, arguments, at = self.calls[index]
            item['arguments'] = arguments
            item['status'] = 'completed'
            out += self._event(
                'response.function_call_arguments.done',
                {'item_id': item['id'], 'output_index': at, 'arguments': arguments},
            )
            out += self._event(
                'response.output_item.done', {'output_index': at, 'item': item}
            )
        self.calls = {}
        return out

    def done(self):
        if self.relayed:
            return b''  # the upstream's own response.completed was relayed
        out = self._close_text() + self._close_calls()
        status, incomplete = _status_of(self.finish_reason)
        response = self.response(
            status, self.output, usage_from_chat(self.usage), incomplete
        )
        self.on_done(response)
        kind = 'response.completed' if status == 'completed' else 'response.incomplete'
        return out + self._event(kind, {'response': response})

    def error(self, err):
        error = {'code': err.code or 'server_error', 'message': err.message}
        if self.relayed and self.last is not None:
            response = dict(self.last, status='failed', error=error)
        else:
            response = self.response('failed', self.output, None, error=error)
        return self._event('response.failed', {'response': response})


# -- a whole response and its stream -------------------------------------------------

_FINAL = ('response.completed', 'response.incomplete')
_PIECE = 256  # characters of text per replayed delta


def events_of_response(response):
    """The `data` of the events of a Responses stream that replays a whole response
    object: created, in progress, each output item (a message's text in pieces, a
    function call's arguments in one delta, other items whole), then completed (or
    incomplete), numbered from 0."""
    seq = iter(range(1 << 30))

    def event(kind, **data):
        return {'type': kind, **data, 'sequence_number': next(seq)}

    start = dict(response, status='in_progress', output=[], usage=None)
    yield event('response.created', response=start)
    yield event('response.in_progress', response=start)
    for index, item in enumerate(response.get('output') or ()):
        yield from _item_events(event, index, item)
    final = (
        'response.incomplete'
        if response.get('status') == 'incomplete'
        else 'response.completed'
    )
    yield event(final, response=response)


def _item_events(event, index, item):
    kind = item.get('type')
    where = {'item_id': item.get('id'), 'output_index': index}
    if kind == 'message':
        yield event(
            'response.output_item.added',
            output_index=index,
            item=dict(item, status='in_progress', content=[]),
        )
        for c, part in enumerate(item.get('content') or ()):
            text_kind = part.get('type')
            field = 'refusal' if text_kind == 'refusal' else 'text'
            text = part.get(field, '')
            yield event(
                'response.content_part.added',
                **where,
                content_index=c,
                part={**part, field: ''},
            )
            delta = (
                'response.refusal.delta'
                if field == 'refusal'
                else 'response.output_text.delta'
            )
            for i in range(0, len(text), _PIECE):
                yield event(delta, **where, content_index=c, delta=text[i : i + _PIECE])
            done = (
                'response.refusal.done'
                if field == 'refusal'
                else 'response.output_text.done'
            )
            yield event(done, **where, content_index=c, **{field: text})
            yield event(
                'response.content_part.done', **where, content_index=c, part=part
            )
    elif kind == 'function_call':
        yield event(
            'response.output_item.added',
            output_index=index,
            item=dict(item, status='in_progress', arguments=''),
        )
        arguments = item.get('arguments', '')
        yield event('response.function_call_arguments.delta', **where, delta=arguments)
        yield event(
            'response.function_call_arguments.done', **where, arguments=arguments
        )
    else:
        yield event('response.output_item.added', output_index=index, item=item)
    yield event('response.output_item.done', output_index=index, item=item)
