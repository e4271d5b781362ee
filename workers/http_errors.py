"""Errors Gunicorn answers itself, before the app sees a request (a malformed request
line, a header with CR or LF, too many or too large headers, a broken chunked body),
in the gateway's JSON error envelope instead of Gunicorn's HTML page.

Gunicorn writes these through `gunicorn.util.write_error`; each worker points that
at `write_error` below after fork. The message is fixed per status: Gunicorn's own
message can quote a header's value, and a header may carry a key.
"""

import orjson
from gunicorn import util

_MESSAGES = {
    400: (
        'invalid_http',
        'The HTTP request is malformed (its request line, a header, or its chunked '
        'body); header values may not contain CR, LF or NUL.',
    ),
    403: ('forbidden', 'The request is forbidden.'),
    414: ('uri_too_long', 'The request line is too long.'),
    417: ('expectation_failed', 'The Expect header cannot be met.'),
    431: (
        'headers_too_large',
        'The request headers are too many or too large.',
    ),
    500: ('internal_error', 'The server failed to handle the request.'),
    501: ('not_implemented', 'The transfer coding is not supported.'),
}


def response(status_int, reason, code, message):
    """A whole HTTP/1.1 error response (closing the connection), as bytes."""
    kind = 'api_error' if status_int >= 500 else 'invalid_request_error'
    body = orjson.dumps(
        {'error': {'message': message, 'type': kind, 'param': None, 'code': code}}
    )
    head = (
        f'HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n'
        f'Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n'
    )
    return head.encode('latin-1') + body


def write_error(sock, status_int, reason, mesg):
    code, message = _MESSAGES.get(status_int, ('invalid_http', reason))
    util.write_nonblock(sock, response(status_int, reason, code, message))


def install():
    util.write_error = write_error
