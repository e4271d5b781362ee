"""Reading a JSON request body: size limit first, then content type, then parsing."""

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.errors import PayloadTooLarge
from aegisflow.errors import RequestTimeout
from aegisflow.errors import UnsupportedMediaType

_JSON_TYPES = ('application/json',)


def read_json(req, limit, timeout=None):
    """The request's JSON object, or the matching `ApiError`.

    The declared length is checked before a byte is read; a body sent without a
    length is read up to ``limit + 1`` bytes and refused past the limit. With a
    `timeout`, a body that stops arriving for that many seconds is refused with 408
    and the connection is not read further, so a slow sender cannot hold a thread
    for ever.
    """
    length = req.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(
            f'The request body is {length} bytes; this gateway accepts at most {limit}.'
        )
    ctype = req.content_type
    if ctype:
        main = ctype.partition(';')[0].strip().lower()
        if main not in _JSON_TYPES and not main.endswith('+json'):
            raise UnsupportedMediaType(
                f"Unsupported Content-Type '{main[:80]}'; send 'application/json'."
            )
    sock = req.env.get('gunicorn.socket') if timeout else None
    try:
        if sock is not None:
            sock.settimeout(timeout)  # NOTE: on each wait for bytes, not in total
        if length is None:
            # NOTE: a chunked upload: Falcon's bounded stream assumes length 0, so
            # read the server's decoded input directly, one byte past the limit.
            raw = req.stream.read(limit + 1)
        else:
            raw = req.bounded_stream.read()
    except TimeoutError:
        raise RequestTimeout(
            f'The request body stopped arriving (nothing for {timeout:g}s); send the '
            'whole body promptly.'
        ) from None
    finally:
        if sock is not None:
            sock.settimeout(None)
    if len(raw) > limit:
        raise PayloadTooLarge(f'The request body exceeds {limit} bytes.')
    if not raw.strip():
        raise InvalidRequest(
            'The request body is empty; send a JSON object.', code='invalid_json'
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f'We could not parse the JSON body of your request ({exc}). Send valid '
            'JSON (no NaN or Infinity, integers within 64 bits, UTF-8).',
            code='invalid_json',
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            'The request body must be a JSON object.', code='invalid_json'
        )
    return body
