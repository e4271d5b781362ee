"""Reading a JSON request body: size limit first, then content type, then parsing.

Slow senders: with a timeout, each wait for body bytes is bounded by it. Under the
gthread worker the whole body is also held to a minimum pace: the worker reads the
connection through a `Pacer` (bound to the serving thread with `serve_with`), and
while `read_json` reads, the body must arrive within the timeout plus one second per
``server.body_min_bytes_per_s`` bytes received, so a client that trickles a byte
just inside each pause cannot hold the thread for the length of its body.
"""

import threading
import time

import orjson

from aegisflow.errors import InvalidRequest
from aegisflow.errors import PayloadTooLarge
from aegisflow.errors import RequestTimeout
from aegisflow.errors import UnsupportedMediaType

_JSON_TYPES = ('application/json',)
_serving = threading.local()


class Pacer:
    """What the server's parser reads a connection through: ``recv`` as the socket's,
    bounded in pace while armed. The server installs one per connection."""

    __slots__ = ('sock', 'rate', 'pause', 'deadline')

    def __init__(self, sock, rate):
        self.sock = sock
        self.rate = rate  # bytes per second that extend the deadline by one second
        self.pause = None
        self.deadline = None

    def recv(self, size):
        if self.deadline is None:
            return self.sock.recv(size)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('too slow')
        self.sock.settimeout(min(self.pause, left))
        data = self.sock.recv(size)
        self.deadline += len(data) / self.rate
        return data

    # NOTE: the server bounds its own reads (draining an unread body) this way
    def gettimeout(self):
        return self.sock.gettimeout()

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def arm(self, pause):
        self.pause = pause
        self.deadline = time.monotonic() + pause

    def disarm(self):
        self.deadline = None
        self.sock.settimeout(None)


def serve_with(pacer):
    """Bind the connection's `Pacer` to the thread serving its request (or None)."""
    _serving.pacer = pacer


# NOTE: JSON nests at most this deep. orjson parses 1,024 levels but encodes 255, and
# the token estimate and the policy walk recurse: every later step handles 128.
MAX_DEPTH = 128


class BodyRules:
    """How a codec reads request bodies: the size limit and the pace rules of
    `server` (``max_body_bytes``, ``body_timeout_s``)."""

    __slots__ = ('limit', 'timeout')

    def __init__(self, server):
        self.limit = server.max_body_bytes
        self.timeout = server.body_timeout_s

    def json(self, req):
        return read_json(req, self.limit, self.timeout)

    def raw(self, req):
        return read_body(req, self.limit, self.timeout)


def read_json(req, limit, timeout=None):
    """The request's JSON object, or the matching `ApiError` (see `read_body`)."""
    return parse_json(read_body(req, limit, timeout))


def read_body(req, limit, timeout=None):
    """The request's body (bytes of a JSON media type), or the matching `ApiError`.

    The declared length is checked before a byte is read; a body sent without a
    length is read up to ``limit + 1`` bytes and refused past the limit. With a
    `timeout`, a body that stops arriving for that many seconds (or, under the
    gthread worker, falls below the minimum pace) is refused with 408 and the
    connection is not read further, so a slow sender cannot hold a thread.
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
    pacer = getattr(_serving, 'pacer', None) if sock is not None else None
    if pacer is not None and pacer.sock is not sock:
        pacer = None
    try:
        if pacer is not None:
            pacer.arm(timeout)
        elif sock is not None:
            sock.settimeout(timeout)  # NOTE: on each wait for bytes, not in total
        if length is None:
            # NOTE: a chunked upload: Falcon's bounded stream assumes length 0, so
            # read the server's decoded input directly, one byte past the limit.
            raw = req.stream.read(limit + 1)
        else:
            raw = req.bounded_stream.read()
    except TimeoutError:
        pace = f', or under {pacer.rate:g} bytes/s after that' if pacer else ''
        raise RequestTimeout(
            f'The request body arrived too slowly (nothing for {timeout:g}s{pace}); '
            'send the whole body promptly.'
        ) from None
    finally:
        if pacer is not None:
            pacer.disarm()
        elif sock is not None:
            sock.settimeout(None)
    if len(raw) > limit:
        raise PayloadTooLarge(f'The request body exceeds {limit} bytes.')
    return raw


def parse_json(raw):
    """The JSON object in `raw`, or the `InvalidRequest` that says what is wrong."""
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
    # PERF: a body with fewer openers than the limit cannot be too deep: no walk
    if raw.count(b'[') + raw.count(b'{') > MAX_DEPTH and _deeper_than(body, MAX_DEPTH):
        raise InvalidRequest(
            f'The JSON body is nested more than {MAX_DEPTH} levels deep; this '
            f'gateway accepts at most {MAX_DEPTH} levels of arrays and objects.',
            code='invalid_json',
        )
    return body


def _deeper_than(value, limit):
    """Whether arrays and objects nest more than `limit` levels in `value`
    (iterative: the walk itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
    return False
