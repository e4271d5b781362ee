"""Every error the gateway can answer with, and its rendering on the wire.

An `ApiError` carries what both wire formats need (status, OpenAI ``type``/``code``/
``param``, a message, extra headers). It is rendered once, in `render_openai` or
`render_anthropic`, chosen by the endpoint the client called. Messages never contain a
secret: callers pass descriptions of what was wrong, never the offending key or prompt.
"""

import orjson

# NOTE: Anthropic's wire format names error types by status, not by cause.
_ANTHROPIC_TYPES = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    403: 'permission_error',
    404: 'not_found_error',
    405: 'invalid_request_error',
    408: 'invalid_request_error',
    413: 'request_too_large',
    415: 'invalid_request_error',
    429: 'rate_limit_error',
    500: 'api_error',
    502: 'api_error',
    503: 'overloaded_error',
    504: 'api_error',
}


class AegisError(Exception):
    """Base of every error raised by AegisFlow itself."""


class ApiError(AegisError):
    """An error answered to the client.

    Keyword Args:
        message: what went wrong, in words a client developer can act on.
        param: the request field at fault (``messages[0].content``), if any.
        code: a stable machine-readable code (``model_not_found``).
        headers: extra response headers (``Retry-After``).
    """

    status = 500
    type = 'api_error'
    default_code = None

    def __init__(self, message, *, param=None, code=None, headers=None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def __reduce__(self):
        kwargs = {'param': self.param, 'code': self.code, 'headers': self.headers}
        return (_rebuild, (type(self), self.message, kwargs))


def _rebuild(cls, message, kwargs):
    return cls(message, **kwargs)


class InvalidRequest(ApiError):
    status = 400
    type = 'invalid_request_error'


class AuthenticationFailed(ApiError):
    status = 401
    type = 'authentication_error'
    default_code = 'invalid_api_key'


class PermissionDenied(ApiError):
    status = 403
    type = 'permission_error'


class NotFound(ApiError):
    status = 404
    type = 'invalid_request_error'


class MethodNotAllowed(ApiError):
    status = 405
    type = 'invalid_request_error'
    default_code = 'method_not_allowed'


class RequestTimeout(ApiError):
    status = 408
    type = 'invalid_request_error'
    default_code = 'request_timeout'


class PayloadTooLarge(ApiError):
    status = 413
    type = 'invalid_request_error'
    default_code = 'request_too_large'


class UnsupportedMediaType(ApiError):
    status = 415
    type = 'invalid_request_error'
    default_code = 'unsupported_media_type'


class RateLimited(ApiError):
    status = 429
    type = 'rate_limit_error'
    default_code = 'rate_limit_exceeded'


class InsufficientQuota(ApiError):
    """A budget is used up (OpenAI's own type and code for it)."""

    status = 429
    type = 'insufficient_quota'
    default_code = 'insufficient_quota'


class InternalError(ApiError):
    status = 500
    type = 'api_error'
    default_code = 'internal_error'


class UpstreamFailed(ApiError):
    """The provider answered with an error or broke the connection."""

    status = 502
    type = 'api_error'
    default_code = 'upstream_error'


class ServiceUnavailable(ApiError):
    status = 503
    type = 'api_error'
    default_code = 'no_healthy_target'


class UpstreamTimeout(ApiError):
    status = 504
    type = 'api_error'
    default_code = 'upstream_timeout'


def openai_body(err):
    """The OpenAI error envelope as a dict (also used for in-stream error events)."""
    return {
        'error': {
            'message': err.message,
            'type': err.type,
            'param': err.param,
            'code': err.code,
        }
    }


def render_openai(err):
    return orjson.dumps(openai_body(err))


def anthropic_body(err):
    kind = _ANTHROPIC_TYPES.get(err.status, 'api_error')
    return {'type': 'error', 'error': {'type': kind, 'message': err.message}}


def render_anthropic(err):
    return orjson.dumps(anthropic_body(err))
