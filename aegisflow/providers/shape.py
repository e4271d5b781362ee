"""What the gateway reads of an OpenAI-format answer, checked before it is read.

An upstream is untrusted input: valid JSON of the wrong shape (``data: null``,
``data: [1,2]``, a chunk without ``choices``, a ``delta`` that is a string) must
become an upstream protocol error (retried or failed over before the first byte,
an error event after it), never an exception deep in the policies, the token count
or the encoder. Each function returns None when the object has the shape the
gateway relies on, else a short description of the first thing that is off (no
upstream text: it goes into the client's error message).
"""

_TEXT = (str, type(None))


def _tool_calls_problem(calls, where):
    if calls is None:
        return None
    if not isinstance(calls, list):
        return f'{where}.tool_calls is not an array'
    for j, call in enumerate(calls):
        if not isinstance(call, dict):
            return f'{where}.tool_calls[{j}] is not an object'
        function = call.get('function')
        if function is None:
            continue
        if not isinstance(function, dict):
            return f'{where}.tool_calls[{j}].function is not an object'
        for key in ('name', 'arguments'):
            if not isinstance(function.get(key), _TEXT):
                return f'{where}.tool_calls[{j}].function.{key} is not a string'
    return None


def _content_problem(content, where):
    if isinstance(content, _TEXT):
        return None
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        return f'{where}.content is neither a string nor an array of parts'
    return None


def _common_problem(data, what):
    if not isinstance(data, dict):
        return f'a {what} that is not a JSON object'
    if not isinstance(data.get('choices'), list):
        return f'a {what} without a choices array'
    if not isinstance(data.get('usage'), dict | None):
        return f'a {what} whose usage is not an object'
    if not isinstance(data.get('model'), _TEXT):
        return f'a {what} whose model is not a string'
    return None


def chunk_problem(chunk):
    """None, or what is wrong with a ``chat.completion.chunk``."""
    problem = _common_problem(chunk, 'stream event')
    if problem:
        return problem
    for i, choice in enumerate(chunk['choices']):
        where = f'choices[{i}].delta'
        if not isinstance(choice, dict):
            return f'a stream event whose choices[{i}] is not an object'
        delta = choice.get('delta')
        if delta is None:
            continue
        if not isinstance(delta, dict):
            return f'a stream event whose {where} is not an object'
        if not isinstance(delta.get('content'), _TEXT):
            return f'a stream event whose {where}.content is not a string'
        problem = _tool_calls_problem(delta.get('tool_calls'), where)
        if problem:
            return 'a stream event whose ' + problem
    return None


def completion_problem(data):
    """None, or what is wrong with a ``chat.completion``."""
    problem = _common_problem(data, 'completion')
    if problem:
        return problem
    for i, choice in enumerate(data['choices']):
        where = f'choices[{i}].message'
        if not isinstance(choice, dict):
            return f'a completion whose choices[{i}] is not an object'
        message = choice.get('message')
        if not isinstance(message, dict):
            return f'a completion whose {where} is not an object'
        problem = _content_problem(
            message.get('content'), where
        ) or _tool_calls_problem(message.get('tool_calls'), where)
        if problem:
            return 'a completion whose ' + problem
    return None
