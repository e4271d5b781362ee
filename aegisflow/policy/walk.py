"""Every text-bearing field of a chat request or response, with a way to rewrite it.

Requests reach the policies in the canonical chat form that is forwarded (a
``/v1/messages`` body is translated before the policies run, so its ``system`` and
content blocks are among these fields); what is scanned is what is sent:

- ``messages[i].content`` as a string, or ``messages[i].content[j].text`` of text parts;
- ``messages[i].tool_calls[j].function.arguments``: the JSON string is decoded and
  every string inside is a field (``...arguments.city``); a rewrite re-encodes it;
  arguments that are not JSON are one text field;
- ``messages[i].name``, ``messages[i].refusal``;
- ``tools[k].function.description`` and every string inside
  ``tools[k].function.parameters`` (descriptions, enums, defaults);
- the legacy ``functions[k]`` the same way, and a string ``prompt``;
- for ``/v1/embeddings``, each text of ``input``.

Responses: ``choices[i].message.content`` and its tool-call arguments.
"""

import orjson


class Field:
    __slots__ = ('path', 'text', '_set')

    def __init__(self, path, text, setter):
        self.path = path
        self.text = text
        self._set = setter

    def set(self, text):
        self.text = text
        self._set(text)


def _item_setter(container, key):
    def set_(value):
        container[key] = value

    return set_


def _strings(value, path, out, setter_for):
    """Fields for every string inside a decoded JSON value."""
    if isinstance(value, str):
        out.append(Field(path, value, setter_for()))
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                out.append(Field(f'{path}.{k}', v, _item_setter(value, k)))
            elif isinstance(v, dict | list):
                _strings(v, f'{path}.{k}', out, None)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                out.append(Field(f'{path}[{i}]', v, _item_setter(value, i)))
            elif isinstance(v, dict | list):
                _strings(v, f'{path}[{i}]', out, None)


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
    _strings(decoded, path, found, None)
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


def _function_definition(function, path, out):
    if isinstance(function.get('description'), str):
        out.append(
            Field(
                f'{path}.description',
                function['description'],
                _item_setter(function, 'description'),
            )
        )
    params = function.get('parameters')
    if isinstance(params, dict | list):
        _strings(params, f'{path}.parameters', out, None)


def request_fields(body):
    out = []
    for i, message in enumerate(body.get('messages') or ()):
        if isinstance(message, dict):
            _message(message, f'messages[{i}]', out)
    for k, tool in enumerate(body.get('tools') or ()):
        function = tool.get('function') if isinstance(tool, dict) else None
        if isinstance(function, dict):
            _function_definition(function, f'tools[{k}].function', out)
    for k, function in enumerate(body.get('functions') or ()):
        if isinstance(function, dict):
            _function_definition(function, f'functions[{k}]', out)
    if isinstance(body.get('prompt'), str):
        out.append(Field('prompt', body['prompt'], _item_setter(body, 'prompt')))
    return out


def embedding_fields(request):
    """The texts of an embeddings request (``input``), each rewritable."""
    out = []
    body, texts = request.body, request.texts
    single = isinstance(body.get('input'), str)
    for i, text in enumerate(texts):

        def set_(value, i=i):
            texts[i] = value
            if single:
                body['input'] = value

        out.append(Field('input' if single else f'input[{i}]', text, set_))
    return out


def response_fields(result):
    out = []
    for i, choice in enumerate(result.get('choices') or ()):
        message = choice.get('message') if isinstance(choice, dict) else None
        if isinstance(message, dict):
            _message(message, f'choices[{i}].message', out)
    return out
