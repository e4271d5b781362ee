"""What every provider reached over HTTP shares: a keep-alive pool sized to the
worker's concurrency (`aegisflow.providers.transport`), timeouts, and one mapping
of transport failures and upstream error statuses to the gateway's errors.

A subclass sets its URLs and authentication headers and translates bodies; it calls
`post_json` for a complete answer and `post_stream` plus `lines` for a stream.
"""

import urllib.parse
from contextlib import contextmanager

import orjson

from aegisflow.errors import UpstreamFailed
from aegisflow.errors import UpstreamTimeout
from aegisflow.providers.base import Provider
from aegisflow.providers.base import iter_lines
from aegisflow.providers.base import upstream_error
from aegisflow.providers.transport import Pool
from aegisflow.providers.transport import Timeout
from aegisflow.providers.transport import TransportError


class HttpProvider(Provider):
    def __init__(self, config, *, headers=None, **options):
        super().__init__(config, **options)
        self._headers = {
            'Content-Type': 'application/json',
            **(headers or {}),
            **dict(config.headers),
        }
        # PERF: one pool for the provider's one origin, called with a path: no URL
        # parsing or pool lookup per request (every URL is the base URL's origin
        # plus a path)
        self._pool = Pool(
            config.base_url,
            maxsize=self.concurrency,
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.timeout_s,
        )
        self._base_url = config.base_url
        self._base_path = (urllib.parse.urlsplit(config.base_url).path or '').rstrip(
            '/'
        )

    def close(self):
        self._pool.close()

    def _post(self, url, body, *, stream, headers=None):
        """POST `body` (an object, or bytes sent as they are) with the provider's
        headers, and `headers` (client headers passed on) over them."""
        if headers:
            headers = {**self._headers, **headers}
        return self._request(
            'POST',
            url,
            body=body if type(body) is bytes else orjson.dumps(body),
            headers=headers,
            stream=stream,
        )

    def _request(self, method, url, *, body=None, headers=None, stream=False):
        assert url.startswith(self._base_url), 'a provider URL outside its base URL'
        try:
            return self._pool.request(
                method,
                self._base_path + url[len(self._base_url) :],
                body=body,
                headers=headers or self._headers,
                preload=not stream,
            )
        except Timeout:
            raise UpstreamTimeout(
                f"Provider '{self.name}' did not answer in time."
            ) from None
        except TransportError as exc:
            raise UpstreamFailed(
                f"Provider '{self.name}' could not be reached ({type(exc).__name__})."
            ) from None

    def error_detail(self, data):
        """The upstream's own words about an error, from its error body, scrubbed
        of every secret the gateway holds for this provider and bounded."""
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.scrub(data[:4096].decode('utf-8', 'replace'))
        err = parsed.get('error') if isinstance(parsed, dict) else None
        if isinstance(err, dict):
            kind = err.get('type')
            message = err.get('message', '')
            if not isinstance(message, str):
                message = orjson.dumps(message).decode()
            if kind and isinstance(kind, str) and self.type == 'anthropic':
                message = f'{kind}: {message}'
            return self.scrub(message)
        if isinstance(err, str):
            return self.scrub(err)
        return self.scrub(str(err)) if err else ''

    def stream_failure(self, detail):
        """The error that ends a stream whose upstream sent an error event."""
        detail = self.scrub(detail if isinstance(detail, str) else repr(detail))
        suffix = f': {detail}' if detail else '.'
        return UpstreamFailed(f"Provider '{self.name}' failed mid-stream{suffix}")

    @contextmanager
    def reading(self):
        """Translate an upstream answer; a shape the translation cannot read (a
        field of the wrong type, a missing key) is an upstream protocol error."""
        try:
            yield
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise self.protocol_error(
                f'an answer of an unexpected shape ({type(exc).__name__})'
            ) from None

    def protocol_error(self, what):
        """The error for an upstream answer that is not in its wire format."""
        return UpstreamFailed(f"Provider '{self.name}' broke its wire format: {what}.")

    def _raise_for(self, resp, data):
        raise upstream_error(
            self.name,
            resp.status,
            self.error_detail(data),
            retry_after=resp.headers.get('Retry-After'),
            max_retry_after_s=self.max_retry_after_s,
        )

    def post_json(self, url, body, headers=None):
        """The upstream's JSON object, or the matching error."""
        return self.post_raw(url, body, headers)[1]

    def post_raw(self, url, body, headers=None):
        """(the upstream's answer as bytes, as a JSON object), or the matching
        error."""
        resp = self._post(url, body, stream=False, headers=headers)
        if resp.status >= 400:
            self._raise_for(resp, resp.data)
        try:
            data = orjson.loads(resp.data)
        except orjson.JSONDecodeError:
            raise UpstreamFailed(
                f"Provider '{self.name}' answered with invalid JSON."
            ) from None
        if not isinstance(data, dict):
            raise UpstreamFailed(
                f"Provider '{self.name}' answered with a JSON "
                f'{type(data).__name__}, not an object.'
            )
        return resp.data, data

    def post_stream(self, url, body, headers=None):
        """An open streaming response (status checked)."""
        resp = self._post(url, body, stream=True, headers=headers)
        if resp.status >= 400:
            try:
                data = resp.read()
            except TransportError:
                data = b''  # NOTE: the status is the error; its text was cut
            try:
                self._raise_for(resp, data)
            finally:
                resp.release_conn()
        return resp

    def lines(self, resp, done):
        """The stream's lines as they arrive. `done()` tells whether the stream
        reached its proper end: then the connection goes back to the pool; otherwise
        it is closed, and a stream that simply stopped is an error."""
        try:
            yield from iter_lines(resp)
        except Timeout:
            raise UpstreamTimeout(
                f"Provider '{self.name}' stalled mid-stream."
            ) from None
        except TransportError as exc:
            raise UpstreamFailed(
                f"Provider '{self.name}' broke the stream ({type(exc).__name__})."
            ) from None
        finally:
            if done():
                resp.release_conn()
            else:
                resp.close()  # NOTE: an unfinished stream cannot go back to the pool
        if not done():
            raise UpstreamFailed(f"Provider '{self.name}' ended the stream early.")
