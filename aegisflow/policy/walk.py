"""Every text-bearing field of a chat request or response, with a way to rewrite it.

The policies read exactly what is forwarded. A request body is walked whole: every
string in it is a field, at its path in OpenAI's notation, known fields and unknown
ones alike (``metadata.note``, ``user``, ``prediction.content``,
``response_format.json_schema.schema.properties.city.description``, a custom tool's
grammar, a field this gateway has never heard of), and so is every dictionary key
that could carry text (anything but a short identifier: ``metadata`` keys, schema
property names), named by its position (``metadata{0}#key``: a path never holds the
text it names). Special cases:

- ``...tool_calls[j].function.arguments``: the JSON string is decoded and every
  string inside is a field (``...arguments.city``); a rewrite re-encodes it;
  arguments that are not JSON are one text field;
- what is not text is not read (`NOT_TEXT`, listed in docs/SECURITY.md): the
  API's own enum and identifier fields (``role``, ``type``, ``id``,
  ``tool_call_id``, tool and function names, ``model``, ``logit_bias`` token ids,
  ``detail``, ``format``), base64 data (``data:`` URLs, ``input_audio``,
  ``file.file_data``), ``file_id``, and signatures and encrypted reasoning of
  thinking blocks. Inside free JSON (metadata, schemas, tool arguments, unknown
  fields) every string is text, whatever its key.

A ``/v1/messages`` body is walked as Anthropic's when it may be passed through to
an Anthropic target (the same rules: ``system``, ``messages[i].content[j].text``,
``tool_result`` contents, ``tool_use`` inputs and tool schemas as free JSON; not
read: ``tool_use_id``, tool names, ``media_type``, base64 ``source.data`` and the
encrypted ``data`` of redacted thinking; the ``thinking`` text of a signed block is
read but `signed`), otherwise as the chat form it is translated to. For
``/v1/embeddings``, each text of ``input`` and every other string of the body.

Responses: ``choices[i].message.content`` and its tool-call arguments; an
Anthropic ``message``'s ``content`` blocks (`message_fields`).
"""

import re

import orjson


class Field:
    """One text and how to rewrite it. `signed`: the text of a signed thinking
    block, which no rewrite may touch (the signature covers it): a policy that
    would redact it blocks instead."""

    __slots__ = ('path', 'text', '_set', 'signed')

    def __init__(self, path, text, setter, signed=False):
        self.path = path
        self.text = text
        self._set = setter
        self.signed = signed

    def set(self, text):
        self.text = text
        self._set(text)


def _item_setter(container, key):
    def set_(value):
        container[key] = value

    return set_


class _Arguments:
    """A tool call's JSON arguments, decoded once; every rewrite re-encodes them."""

    __slots__ = ('owner', 'decoded')

    def __init__(self, owner, decoded):
        self.owner = owner
        self.decoded = decoded

    def wrap(self, field):
        inner = field._set

        def set_(value):
            inner(value)
            self.owner['arguments'] = orjson.dumps(self.decoded).decode()

        field._set = set_
        return field


def _arguments(function, path, out):
    raw = function.get('arguments')
    if not isinstance(raw, str) or not raw:
        return
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        out.append(Field(path, raw, _item_setter(function, 'arguments')))
        return
    if isinstance(decoded, str):
        out.append(Field(path, raw, _item_setter(function, 'arguments')))
        return
    found = []
    _walk(decoded, path, found, None, False)
    args = _Arguments(function, decoded)
    out.extend(args.wrap(f) for f in found)


def _message(message, path, out):
    content = message.get('content')
    if isinstance(content, str):
        out.append(Field(f'{path}.content', content, _item_setter(message, 'content')))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict) and isinstance(part.get('text'), str):
                out.append(
                    Field(
                        f'{path}.content[{j}].text',
                        part['text'],
                        _item_setter(part, 'text'),
                    )
                )
    for key in ('name', 'refusal'):
        if isinstance(message.get(key), str):
            out.append(Field(f'{path}.{key}', message[key], _item_setter(message, key)))
    for j, call in enumerate(message.get('tool_calls') or ()):
        function = call.get('function') if isinstance(call, dict) else None
        if isinstance(function, dict):
            _arguments(function, f'{path}.tool_calls[{j}].function.arguments', out)
    function_call = message.get('function_call')
    if isinstance(function_call, dict):
        _arguments(function_call, f'{path}.function_call.arguments', out)


# string values that are not text: enums, identifiers, base64 data, signatures
NOT_TEXT = frozenset(
    (
        'role', 'type', 'id', 'tool_call_id', 'call_id', 'file_id', 'file_data',
        'detail', 'format', 'signature', 'encrypted_content', 'object',
        'tool_use_id', 'media_type', 'status',
    )
)  # fmt: skip
_NOT_TEXT_TOP = frozenset(('model', 'logit_bias', 'previous_response_id'))
# whose `name` is an identifier (chat functions; Anthropic tools, tool_use blocks
# and a named tool_choice; Responses function_call input items)
_NAMED = frozenset(
    ('function', 'custom', 'tools', 'content', 'tool_choice', 'input', 'output')
)
# blocks whose `data` is base64 or encrypted, not text
_OPAQUE_DATA = ('base64', 'redacted_thinking')
# whose `arguments` are JSON (chat calls; Responses function_call items)
_CALLS = frozenset(('function', 'function_call', 'input', 'output'))
_SHORT_KEY = 16


def _binary(value):
    """A ``data:`` URL carrying base64 (an image, a file): data, not text."""
    return value.startswith('data:') and ';base64,' in value[:200]


def _key_setter(container, key):
    def set_(value):
        container[value] = container.pop(key)

    return set_


def _text_key(key):
    """A dictionary key that could carry text: anything but a short identifier."""
    return (
        len(key) > _SHORT_KEY or not key.replace('_', 'a').replace('-', 'a').isalnum()
    )


def _walk(value, path, out, parent, structural):
    """Fields for every text string inside `value` (a dict or a list).

    `parent`: the key `value` sits under; `structural`: whether `value` is one of
    the API's own objects, whose keys are field names (not read as text) and whose
    enum and identifier fields (`NOT_TEXT`) are not text. Anywhere else (metadata,
    schemas, tool arguments, unknown fields) every string and every key that could
    carry text is read."""
    if isinstance(value, dict):
        for n, (key, item) in enumerate(list(value.items())):
            if not structural and _text_key(key):
                # NOTE: a key that may carry text is named by its position, never by
                # itself: field paths go into logs and audit rows
                at = f'{path}{{{n}}}'
                out.append(Field(f'{at}#key', key, _key_setter(value, key)))
            else:
                at = f'{path}.{key}' if path else key
            if isinstance(item, str):
                if structural:
                    _api_string(value, key, item, at, out, parent)
                elif not _binary(item):
                    out.append(Field(at, item, _item_setter(value, key)))
            elif isinstance(item, dict | list):
                if structural and key == 'input_audio':
                    continue  # base64 audio and its format
                inner = structural and key in _STRUCTURAL
                if inner and key == 'input' and value.get('type') == 'tool_use':
                    inner = False  # a tool_use block's input: free JSON
                _walk(item, at, out, key, inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            at = f'{path}[{i}]'
            if isinstance(item, str):
                if not _binary(item):
                    out.append(Field(at, item, _item_setter(value, i)))
            elif isinstance(item, dict | list):
                _walk(item, at, out, parent, structural and parent in _STRUCTURAL)


def _api_string(value, key, item, at, out, parent):
    """The field of a string in one of the API's own objects, if it is text."""
    if _binary(item) or _not_text(key, parent):
        return
    if key == 'arguments' and parent in _CALLS:
        _arguments(value, at, out)
    elif key == 'data' and value.get('type') in _OPAQUE_DATA:
        return
    elif key == 'thinking' and 'signature' in value:
        out.append(Field(at, item, _item_setter(value, key), signed=True))
    else:
        out.append(Field(at, item, _item_setter(value, key)))


def _not_text(key, parent):
    return key in NOT_TEXT or (key == 'name' and parent in _NAMED)


# containers whose keys are the API's own field names, not free text
_STRUCTURAL = frozenset(
    (
        'messages', 'content', 'tool_calls', 'function', 'function_call', 'tools',
        'functions', 'image_url', 'file', 'prediction', 'response_format',
        'json_schema', 'stream_options', 'audio', 'custom', 'tool_choice',
        'web_search_options', 'input', 'system', 'source', 'cache_control',
        'thinking', 'output',
    )
)  # fmt: skip


def request_fields(body, skip=()):
    out = []
    for key, value in list(body.items()):
        if key in _NOT_TEXT_TOP or key in skip:
            continue
        if isinstance(value, str):
            if not _not_text(key, None) and not _binary(value):
                out.append(Field(key, value, _item_setter(body, key)))
        elif isinstance(value, dict | list):
            _walk(value, key, out, key, key in _STRUCTURAL)
    return out


# what a field of a request is, in the canonical chat form's words (every wire
# format's fields map onto these): what an input policy's `fields` names
FIELD_KINDS = ('system', 'user', 'assistant', 'tool_results', 'other')
_ITEM = re.compile(r'(messages|input)\[(\d+)\](?:\.content\[(\d+)\])?')
_TOOL_OUTPUTS = frozenset(
    (
        'function_call_output',
        'custom_tool_call_output',
        'computer_call_output',
        'local_shell_call_output',
        'mcp_call_output',
    )
)
_ROLE_KINDS = {
    'system': 'system',
    'developer': 'system',
    'user': 'user',
    'assistant': 'assistant',
    'tool': 'tool_results',
    'function': 'tool_results',
}


def field_kind(body, path):
    """The kind of the field at `path` of a request `body` (`FIELD_KINDS`): chat
    messages by role (``tool`` results), Anthropic ``tool_result`` blocks,
    Responses ``function_call_output`` items; system prompts and instructions;
    everything else (tool definitions, settings) ``other``."""
    if path.startswith(('system', 'instructions')):
        return 'system'
    if path == 'input' or path.startswith('input.'):
        return 'user'  # NOTE: a Responses input given as one string
    m = _ITEM.match(path)
    items = body.get(m.group(1)) if m else None
    if not isinstance(items, list) or int(m.group(2)) >= len(items):
        return 'other'
    item = items[int(m.group(2))]
    if not isinstance(item, dict):
        return 'user' if isinstance(item, str) else 'other'
    if item.get('type') in _TOOL_OUTPUTS:
        return 'tool_results'
    block = m.group(3)
    content = item.get('content')
    if block is not None and isinstance(content, list) and int(block) < len(content):
        part = content[int(block)]
        if isinstance(part, dict) and part.get('type') == 'tool_result':
            return 'tool_results'
    return _ROLE_KINDS.get(item.get('role'), 'other')


def embedding_fields(request):
    """The texts of an embeddings request (``input``), each rewritable, and every
    other text string of the body."""
    out = []
    body, texts = request.body, request.texts
    single = isinstance(body.get('input'), str)
    for i, text in enumerate(texts):

        def set_(value, i=i):
            texts[i] = value
            if single:
                body['input'] = value

        out.append(Field('input' if single else f'input[{i}]', text, set_))
    return out + request_fields(body, skip=('input',))


def message_fields(message):
    """The texts of an Anthropic ``message``'s content blocks (text, thinking,
    ``tool_use`` inputs)."""
    out = []
    content = message.get('content')
    if isinstance(content, list):
        _walk(content, 'content', out, 'content', True)
    return out


def response_object_fields(response):
    """The texts of a Responses API ``response``: output texts and refusals,
    function call arguments, reasoning summaries."""
    out = []
    output = response.get('output')
    if isinstance(output, list):
        _walk(output, 'output', out, 'output', True)
    return out


def response_fields(result):
    out = []
    for i, choice in enumerate(result.get('choices') or ()):
        message = choice.get('message') if isinstance(choice, dict) else None
        if isinstance(message, dict):
            _message(message, f'choices[{i}].message', out)
    return out
