"""A chat answer as the cache keeps it: one ``chat.completion`` object, whether it
came as one or as a stream of chunks (`assemble`), given back either way (`chunks`
replays it as a well-formed stream), with a request's redaction placeholders
(`placeholders_of`, `restored`)."""

import re

_PIECE = 256  # characters of content per replayed chunk


def assemble(chunks):
    """The ``chat.completion`` a complete stream of chat chunks adds up to."""
    first = chunks[0]
    choices = {}
    usage = None
    for chunk in chunks:
        if chunk.get('usage'):
            usage = chunk['usage']
        for c in chunk.get('choices') or ():
            index = c.get('index', 0)
            choice = choices.get(index)
            if choice is None:
                choice = choices[index] = {
                    'index': index,
                    'message': {'role': 'assistant', 'content': None},
                    'finish_reason': None,
                    'calls': {},
                }
            delta = c.get('delta') or {}
            text = delta.get('content')
            if text:
                message = choice['message']
                message['content'] = (message['content'] or '') + text
            if delta.get('refusal'):
                message = choice['message']
                message['refusal'] = message.get('refusal', '') + delta['refusal']
            for call in delta.get('tool_calls') or ():
                _add_call(choice['calls'], call)
            if c.get('finish_reason'):
                choice['finish_reason'] = c['finish_reason']
    out = {
        'id': first.get('id'),
        'object': 'chat.completion',
        'created': first.get('created'),
        'model': first.get('model'),
        'choices': [],
    }
    if first.get('system_fingerprint'):
        out['system_fingerprint'] = first['system_fingerprint']
    for index in sorted(choices):
        choice = choices.pop(index)
        calls = choice.pop('calls')
        if calls:
            choice['message']['tool_calls'] = [calls[i] for i in sorted(calls)]
        out['choices'].append(choice)
    if usage is not None:
        out['usage'] = usage
    return out


def _add_call(calls, delta):
    index = delta.get('index', 0)
    call = calls.get(index)
    fn = delta.get('function') or {}
    if call is None:
        call = calls[index] = {
            'id': delta.get('id'),
            'type': delta.get('type', 'function'),
            'function': {'name': fn.get('name') or '', 'arguments': ''},
        }
    elif delta.get('id'):
        call['id'] = delta['id']
    if fn.get('name') and not call['function']['name']:
        call['function']['name'] = fn['name']
    if fn.get('arguments'):
        call['function']['arguments'] += fn['arguments']


def chunks(completion):
    """The stream of chat chunks that replays a ``chat.completion``: per choice a
    role chunk, the content in pieces, the tool calls, the finish; then the usage
    chunk (the codec drops it unless the client asked for usage)."""
    base = {
        'id': completion.get('id'),
        'object': 'chat.completion.chunk',
        'created': completion.get('created'),
        'model': completion.get('model'),
    }
    if completion.get('system_fingerprint'):
        base['system_fingerprint'] = completion['system_fingerprint']
    for choice in completion.get('choices') or ():
        index = choice.get('index', 0)
        message = choice.get('message') or {}

        def chunk(delta, finish=None, index=index):
            return dict(
                base,
                choices=[{'index': index, 'delta': delta, 'finish_reason': finish}],
            )

        yield chunk({'role': 'assistant', 'content': ''})
        content = message.get('content') or ''
        for i in range(0, len(content), _PIECE):
            yield chunk({'content': content[i : i + _PIECE]})
        if message.get('refusal'):
            yield chunk({'refusal': message['refusal']})
        for i, call in enumerate(message.get('tool_calls') or ()):
            yield chunk(
                {
                    'tool_calls': [
                        {
                            'index': i,
                            'id': call.get('id'),
                            'type': call.get('type', 'function'),
                            'function': call.get('function') or {},
                        }
                    ]
                }
            )
        yield chunk({}, choice.get('finish_reason') or 'stop')
    if completion.get('usage'):
        yield dict(base, choices=[], usage=completion['usage'])


def placeholders_of(value, redactor, kind='chat'):
    """`value` (JSON) with the originals a request's placeholders were restored to
    put back as the placeholders: what the cache stores, so no other request ever
    gets this request's values. `kind`: ``message`` (an Anthropic message: its
    thinking blocks are left as they are, signed and never restored) or
    ``response`` (a Responses object: its reasoning items likewise)."""
    if not redactor.originals:
        return value
    originals = sorted(redactor.originals.items(), key=lambda kv: -len(kv[1]))
    pattern = re.compile('|'.join(re.escape(v) for _, v in originals))
    back = {v: p for p, v in originals}
    return _map_answer(value, lambda s: pattern.sub(lambda m: back[m.group()], s), kind)


def restored(value, redactor, kind='chat'):
    """`value` (JSON) with this request's placeholders restored to its originals
    (`kind`: as in `placeholders_of`)."""
    if not redactor.originals:
        return value
    return _map_answer(value, redactor.restore_text, kind)


# the parts of a native answer that are signed or opaque: never rewritten
_SIGNED = {
    'message': ('content', frozenset(('thinking', 'redacted_thinking'))),
    'response': ('output', frozenset(('reasoning',))),
}


def _map_answer(value, fn, kind):
    if kind not in _SIGNED:
        return _map_strings(value, fn)
    field, signed = _SIGNED[kind]
    parts = [
        part if part.get('type') in signed else _map_strings(part, fn)
        for part in value.get(field) or ()
    ]
    return dict(value, **{field: parts})


def _map_strings(value, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value
