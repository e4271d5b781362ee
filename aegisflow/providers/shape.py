"""What the gateway reads of an OpenAI-format answer, checked before it is read.

An upstream is untrusted input: valid JSON of the wrong shape (``data: null``,
``data: [1,2]``, a chunk without ``choices``, a ``delta`` that is a string) must
become an upstream protocol error (retried or failed over before the first byte,
an error event after it), never an exception deep in the policies, the token count
or the encoder. Each function returns None when the object has the shape the
gateway relies on, else a short description of the first thing that is off (no
upstream text: it goes into the client's error message).
"""

from aegisflow.wire.common import is_count as _count

_TEXT = (str, type(None))
_DETAILS = ('prompt_tokens_details', 'completion_tokens_details')


def _usage_problem(usage):
    """NOTE: counts of the wrong type are not refused (servers differ, and the
    answer is still good): every reader of usage takes integers only."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        return 'usage is not an object'
    for key in _DETAILS:
        if not isinstance(usage.get(key), dict | None):
            return f'usage.{key} is not an object'
    return None


def _tool_calls_problem(calls, where):
    if calls is None:
        return None
    if not isinstance(calls, list):
        return f'{where}.tool_calls is not an array'
    for j, call in enumerate(calls):
        if not isinstance(call, dict):
            return f'{where}.tool_calls[{j}] is not an object'
        if not _count(call.get('index')):
            return f'{where}.tool_calls[{j}].index is not an index'
        function = call.get('function')
        if function is None:
            continue
        if not isinstance(function, dict):
            return f'{where}.tool_calls[{j}].function is not an object'
        for key in ('name', 'arguments'):
            if not isinstance(function.get(key), _TEXT):
                return f'{where}.tool_calls[{j}].function.{key} is not a string'
    return None


def _content_problem(content, where, parts):
    if isinstance(content, _TEXT):
        return None
    if (
        parts
        and isinstance(content, list)
        and all(isinstance(p, dict) for p in content)
    ):
        return None
    return f'{where}.content is not a string' + (' or an array of parts' * parts)


def _common_problem(data, what):
    if not isinstance(data, dict):
        return f'a {what} that is not a JSON object'
    if not isinstance(data.get('choices'), list):
        return f'a {what} without a choices array'
    problem = _usage_problem(data.get('usage'))
    if problem:
        return f'a {what} whose {problem}'
    if not isinstance(data.get('model'), _TEXT):
        return f'a {what} whose model is not a string'
    return None


def _choices_problem(data, what, key, *, required, parts):
    """What is wrong with the ``choices[i][key]`` objects (delta or message)."""
    for i, choice in enumerate(data['choices']):
        if not isinstance(choice, dict):
            return f'a {what} whose choices[{i}] is not an object'
        if not _count(choice.get('index')):
            return f'a {what} whose choices[{i}].index is not an index'
        if not isinstance(choice.get('finish_reason'), _TEXT):
            return f'a {what} whose choices[{i}].finish_reason is not a string'
        inner = choice.get(key)
        if inner is None and not required:
            continue
        where = f'choices[{i}].{key}'
        if not isinstance(inner, dict):
            return f'a {what} whose {where} is not an object'
        problem = _content_problem(
            inner.get('content'), where, parts
        ) or _tool_calls_problem(inner.get('tool_calls'), where)
        if problem:
            return f'a {what} whose {problem}'
    return None


def chunk_problem(chunk):
    """None, or what is wrong with a ``chat.completion.chunk``."""
    return _common_problem(chunk, 'stream event') or _choices_problem(
        chunk, 'stream event', 'delta', required=False, parts=False
    )


def completion_problem(data):
    """None, or what is wrong with a ``chat.completion``."""
    return _common_problem(data, 'completion') or _choices_problem(
        data, 'completion', 'message', required=True, parts=True
    )
