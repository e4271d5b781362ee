"""Validation of an OpenAI ``POST /v1/chat/completions`` body.

Everything the current API accepts is checked for type and range, and the first
mistake is reported as a 400 whose ``param`` names the field in OpenAI's notation
(``messages[2].content[0].image_url.url``). Fields the gateway does not know are
kept, so OpenAI-compatible upstreams still receive them.
"""

import re

from aegisflow.errors import InvalidRequest
from aegisflow.tokens import prompt_tokens

_ROLES = ('system', 'developer', 'user', 'assistant', 'tool', 'function')
_USER_PARTS = ('text', 'image_url', 'input_audio', 'file')
_TOOL_NAME = re.compile(r'[A-Za-z0-9_\-]{1,64}\Z')
_NUMBER = (int, float)

_TYPE_WORDS = {
    str: 'a string',
    bool: 'a boolean',
    int: 'an integer',
    float: 'a number',
    list: 'an array',
    dict: 'an object',
    type(None): 'null',
}


class ChatRequest:
    """A validated chat request; `body` is the client's JSON object as sent."""

    __slots__ = (
        'body',
        'model',
        'messages',
        'stream',
        'include_usage',
        'n',
        'max_tokens',
        'stop',
        'tools',
        'tool_choice',
    )

    def __init__(self, body):
        self.body = body
        self.model = body['model']
        self.messages = body['messages']
        self.stream = body.get('stream') is True
        opts = body.get('stream_options') or {}
        self.include_usage = self.stream and opts.get('include_usage') is True
        self.n = body.get('n') or 1
        mt = body.get('max_completion_tokens')
        self.max_tokens = mt if mt is not None else body.get('max_tokens')
        stop = body.get('stop')
        self.stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
        self.tools = body.get('tools') or ()
        self.tool_choice = body.get('tool_choice')

    def reservation(self, default_completion):
        """(prompt tokens estimated, completion tokens to reserve) for the limits."""
        prompt = prompt_tokens(self.messages, self.tools or None)
        return prompt, (self.max_tokens or default_completion) * self.n


def _name(value):
    if isinstance(value, bool):
        return 'a boolean'
    return _TYPE_WORDS.get(type(value), type(value).__name__)


def _bad_type(param, expected, value):
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, "
        f'but got {_name(value)} instead.',
        param=param,
        code='invalid_type',
    )


def _bad_value(param, message):
    return InvalidRequest(
        f"Invalid value for '{param}': {message}", param=param, code='invalid_value'
    )


def _missing(param):
    return InvalidRequest(
        f"Missing required parameter: '{param}'.",
        param=param,
        code='missing_required_parameter',
    )


def _check_str(body, key, param):
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad_type(param, 'a string', value)


def _check_bool(body, key):
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _bad_type(key, 'a boolean', value)


def _check_int(body, key, lo, hi):
    value = body.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad_type(key, 'an integer', value)
    if not lo <= value <= hi:
        raise _bad_value(
            key, f'expected an integer from {lo} to {hi}, but got {value}.'
        )


def _check_num(body, key, lo, hi):
    value = body.get(key)
    if value is None:
        return
    if not isinstance(value, _NUMBER) or isinstance(value, bool):
        raise _bad_type(key, 'a number', value)
    if not lo <= value <= hi:
        raise _bad_value(key, f'expected a number from {lo} to {hi}, but got {value}.')


def _check_obj(body, key, param=None):
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise _bad_type(param or key, 'an object', value)
    return value


def parse_chat_request(body):
    """Validate `body` (a dict); return a `ChatRequest` or raise `InvalidRequest`."""
    model = body.get('model')
    if model is None:
        raise _missing('model')
    if not isinstance(model, str):
        raise _bad_type('model', 'a string', model)
    if not model.strip():
        raise _bad_value('model', 'expected a non-empty model name.')
    messages = body.get('messages')
    if messages is None:
        raise _missing('messages')
    if not isinstance(messages, list):
        raise _bad_type('messages', 'an array of message objects', messages)
    if not messages:
        raise _bad_value(
            'messages',
            'expected an array with at least 1 message, but got an empty array.',
        )
    for i, msg in enumerate(messages):
        _check_message(msg, f'messages[{i}]')
    _check_sampling(body)
    _check_stream(body)
    _check_stop(body.get('stop'))
    _check_tools(body)
    _check_response_format(body.get('response_format'))
    return ChatRequest(body)


def _check_sampling(body):
    _check_num(body, 'temperature', 0, 2)
    _check_num(body, 'top_p', 0, 1)
    _check_num(body, 'presence_penalty', -2, 2)
    _check_num(body, 'frequency_penalty', -2, 2)
    _check_int(body, 'n', 1, 128)
    _check_int(body, 'max_tokens', 1, 2**31 - 1)
    _check_int(body, 'max_completion_tokens', 1, 2**31 - 1)
    _check_int(body, 'seed', -(2**63), 2**63 - 1)
    _check_int(body, 'top_logprobs', 0, 20)
    _check_bool(body, 'logprobs')
    _check_bool(body, 'parallel_tool_calls')
    _check_bool(body, 'store')
    _check_str(body, 'user', 'user')
    _check_obj(body, 'metadata')
    if body.get('top_logprobs') is not None and body.get('logprobs') is not True:
        raise _bad_value('top_logprobs', "requires 'logprobs' to be true.")
    bias = _check_obj(body, 'logit_bias')
    for token, value in (bias or {}).items():
        if not isinstance(value, _NUMBER) or isinstance(value, bool):
            raise _bad_type(f'logit_bias.{token}', 'a number', value)
        if not -100 <= value <= 100:
            raise _bad_value(
                f'logit_bias.{token}', 'expected a number from -100 to 100.'
            )


def _check_stream(body):
    _check_bool(body, 'stream')
    opts = _check_obj(body, 'stream_options')
    if opts is None:
        return
    if body.get('stream') is not True:
        raise _bad_value('stream_options', "only allowed when 'stream' is true.")
    usage = opts.get('include_usage')
    if usage is not None and not isinstance(usage, bool):
        raise _bad_type('stream_options.include_usage', 'a boolean', usage)


def _check_stop(stop):
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list):
        raise _bad_type('stop', 'a string or an array of strings', stop)
    if len(stop) > 4:
        raise _bad_value('stop', f'expected at most 4 sequences, but got {len(stop)}.')
    for i, item in enumerate(stop):
        if not isinstance(item, str):
            raise _bad_type(f'stop[{i}]', 'a string', item)


def _check_message(msg, param):
    if not isinstance(msg, dict):
        raise _bad_type(param, 'an object', msg)
    role = msg.get('role')
    if role is None:
        raise _missing(f'{param}.role')
    if role not in _ROLES:
        raise _bad_value(
            f'{param}.role',
            f'expected one of {", ".join(_ROLES)}, but got '
            f'{_name(role) if not isinstance(role, str) else repr(role[:40])}.',
        )
    _check_str(msg, 'name', f'{param}.name')
    content = msg.get('content')
    if role == 'assistant':
        if content is None and not (
            msg.get('tool_calls') or msg.get('function_call') or msg.get('refusal')
        ):
            raise _missing(f'{param}.content')
        _check_content(content, f'{param}.content', ('text', 'refusal'), nullable=True)
        _check_tool_calls(msg.get('tool_calls'), f'{param}.tool_calls')
        return
    if content is None and 'content' not in msg:
        raise _missing(f'{param}.content')
    parts = _USER_PARTS if role == 'user' else ('text',)
    _check_content(content, f'{param}.content', parts, nullable=False)
    if role == 'tool':
        call_id = msg.get('tool_call_id')
        if call_id is None:
            raise _missing(f'{param}.tool_call_id')
        if not isinstance(call_id, str):
            raise _bad_type(f'{param}.tool_call_id', 'a string', call_id)
    if role == 'function' and not isinstance(msg.get('name'), str):
        raise _missing(f'{param}.name')


def _check_content(content, param, kinds, *, nullable):
    if isinstance(content, str) or (content is None and nullable):
        return
    if not isinstance(content, list):
        raise _bad_type(param, 'a string or an array of content parts', content)
    for i, part in enumerate(content):
        p = f'{param}[{i}]'
        if not isinstance(part, dict):
            raise _bad_type(p, 'an object', part)
        kind = part.get('type')
        if kind not in kinds:
            raise _bad_value(
                f'{p}.type',
                f'expected one of {", ".join(kinds)}, but got {kind!r:.40}.',
            )
        if kind in ('text', 'refusal'):
            if not isinstance(part.get(kind), str):
                raise _bad_type(f'{p}.{kind}', 'a string', part.get(kind))
        elif kind == 'image_url':
            image = part.get('image_url')
            if not isinstance(image, dict):
                raise _bad_type(f'{p}.image_url', 'an object', image)
            if not isinstance(image.get('url'), str):
                raise _bad_type(f'{p}.image_url.url', 'a string', image.get('url'))
            detail = image.get('detail')
            if detail is not None and detail not in ('auto', 'low', 'high'):
                raise _bad_value(f'{p}.image_url.detail', 'expected auto, low or high.')
        elif not isinstance(part.get(kind), dict):
            raise _bad_type(f'{p}.{kind}', 'an object', part.get(kind))


def _check_tool_calls(calls, param):
    if calls is None:
        return
    if not isinstance(calls, list):
        raise _bad_type(param, 'an array', calls)
    for i, call in enumerate(calls):
        p = f'{param}[{i}]'
        if not isinstance(call, dict):
            raise _bad_type(p, 'an object', call)
        if not isinstance(call.get('id'), str):
            raise _bad_type(f'{p}.id', 'a string', call.get('id'))
        fn = call.get('function')
        if not isinstance(fn, dict):
            raise _bad_type(f'{p}.function', 'an object', fn)
        if not isinstance(fn.get('name'), str):
            raise _bad_type(f'{p}.function.name', 'a string', fn.get('name'))
        if not isinstance(fn.get('arguments'), str):
            raise _bad_type(f'{p}.function.arguments', 'a string', fn.get('arguments'))


def _check_tools(body):
    tools = body.get('tools')
    names = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad_type('tools', 'an array of tool objects', tools)
        if len(tools) > 128:
            raise _bad_value(
                'tools', f'expected at most 128 tools, but got {len(tools)}.'
            )
        for i, tool in enumerate(tools):
            names.add(_check_tool(tool, f'tools[{i}]'))
    choice = body.get('tool_choice')
    if choice is None:
        return
    if not tools:
        raise _bad_value('tool_choice', "only allowed when 'tools' are specified.")
    if isinstance(choice, str):
        if choice not in ('none', 'auto', 'required'):
            raise _bad_value(
                'tool_choice', 'expected none, auto, required or a named tool.'
            )
        return
    if not isinstance(choice, dict):
        raise _bad_type('tool_choice', 'a string or an object', choice)
    fn = choice.get('function')
    name = fn.get('name') if isinstance(fn, dict) else None
    if choice.get('type') != 'function' or not isinstance(name, str):
        raise _bad_value(
            'tool_choice', "expected {'type': 'function', 'function': {'name': ...}}."
        )
    if name not in names:
        raise _bad_value(
            'tool_choice.function.name', f'no tool named {name!r:.70} is in tools.'
        )


def _check_tool(tool, param):
    if not isinstance(tool, dict):
        raise _bad_type(param, 'an object', tool)
    kind = tool.get('type')
    if kind == 'custom':
        custom = tool.get('custom')
        if not isinstance(custom, dict) or not isinstance(custom.get('name'), str):
            raise _bad_type(f'{param}.custom.name', 'a string', None)
        return custom['name']
    if kind != 'function':
        raise _bad_value(
            f'{param}.type', f'expected function or custom, but got {kind!r:.40}.'
        )
    fn = tool.get('function')
    if not isinstance(fn, dict):
        raise _bad_type(f'{param}.function', 'an object', fn)
    name = fn.get('name')
    if name is None:
        raise _missing(f'{param}.function.name')
    if not isinstance(name, str):
        raise _bad_type(f'{param}.function.name', 'a string', name)
    if not _TOOL_NAME.match(name):
        raise _bad_value(
            f'{param}.function.name',
            'expected 1 to 64 letters, digits, underscores or dashes.',
        )
    _check_str(fn, 'description', f'{param}.function.description')
    _check_obj(fn, 'parameters', f'{param}.function.parameters')
    strict = fn.get('strict')
    if strict is not None and not isinstance(strict, bool):
        raise _bad_type(f'{param}.function.strict', 'a boolean', strict)
    return name


def _check_response_format(fmt):
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _bad_type('response_format', 'an object', fmt)
    kind = fmt.get('type')
    if kind not in ('text', 'json_object', 'json_schema'):
        raise _bad_value(
            'response_format.type', 'expected text, json_object or json_schema.'
        )
    if kind == 'json_schema':
        schema = fmt.get('json_schema')
        if not isinstance(schema, dict):
            raise _bad_type('response_format.json_schema', 'an object', schema)
        if not isinstance(schema.get('name'), str):
            raise _missing('response_format.json_schema.name')
        s = schema.get('schema')
        if s is not None and not isinstance(s, dict):
            raise _bad_type('response_format.json_schema.schema', 'an object', s)
