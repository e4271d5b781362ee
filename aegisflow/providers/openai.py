"""OpenAI and any OpenAI-compatible server (vLLM, Groq, Together, Mistral, LM Studio).

The request body is forwarded as the client sent it, with ``model`` replaced by the
upstream model. For streams the gateway asks for ``stream_options.include_usage`` so
it always learns the usage (unless ``stream_usage: false`` for servers that reject
it); the usage chunk is passed to the client only when the client asked for it.

One urllib3 pool per provider, sized to the worker's concurrency, keeps connections
alive. The provider key comes from the provider's environment variable; the client's
key is never forwarded, and the client cannot choose the upstream URL.
"""

import orjson
import urllib3

from aegisflow.errors import UpstreamFailed
from aegisflow.errors import UpstreamTimeout
from aegisflow.providers.base import Provider
from aegisflow.providers.base import iter_lines
from aegisflow.providers.base import upstream_error


class OpenAIProvider(Provider):
    type = 'openai'
    embeddings = True

    def __init__(self, config, *, concurrency=1):
        super().__init__(config, concurrency=concurrency)
        self._url = config.base_url + '/chat/completions'
        headers = {'Content-Type': 'application/json', 'Accept': 'application/json'}
        if config.api_key:
            headers['Authorization'] = f'Bearer {config.api_key}'
        headers.update(dict(config.headers))
        self._headers = headers
        self._timeout = urllib3.Timeout(
            connect=config.connect_timeout_s, read=config.timeout_s
        )
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=max(1, concurrency), block=False, retries=False
        )

    def close(self):
        self._pool.clear()

    def _post(self, body, *, stream):
        try:
            return self._pool.request(
                'POST',
                self._url,
                body=orjson.dumps(body),
                headers=self._headers,
                timeout=self._timeout,
                preload_content=not stream,
                redirect=False,
            )
        except urllib3.exceptions.TimeoutError:
            raise UpstreamTimeout(
                f"Provider '{self.name}' did not answer in time."
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamFailed(
                f"Provider '{self.name}' could not be reached ({type(exc).__name__})."
            ) from None

    def _raise_for(self, resp, data):
        detail = ''
        try:
            parsed = orjson.loads(data)
            err = parsed.get('error') if isinstance(parsed, dict) else None
            detail = err.get('message', '') if isinstance(err, dict) else str(err or '')
        except orjson.JSONDecodeError:
            detail = data[:200].decode('utf-8', 'replace')
        retry_after = resp.headers.get('Retry-After')
        raise upstream_error(
            self.name,
            resp.status,
            detail,
            retry_after=retry_after if retry_after else None,
        )

    def embed(self, request, model):
        body = dict(request.body, model=model)
        url = self._url.rsplit('/chat/completions', 1)[0] + '/embeddings'
        try:
            resp = self._pool.request(
                'POST',
                url,
                body=orjson.dumps(body),
                headers=self._headers,
                timeout=self._timeout,
                redirect=False,
            )
        except urllib3.exceptions.TimeoutError:
            raise UpstreamTimeout(
                f"Provider '{self.name}' did not answer in time."
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamFailed(
                f"Provider '{self.name}' could not be reached ({type(exc).__name__})."
            ) from None
        if resp.status >= 400:
            self._raise_for(resp, resp.data)
        try:
            data = orjson.loads(resp.data)
        except orjson.JSONDecodeError:
            raise UpstreamFailed(
                f"Provider '{self.name}' answered with invalid JSON."
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get('data'), list):
            raise UpstreamFailed(f"Provider '{self.name}' answered without embeddings.")
        return data

    def complete(self, request, model):
        body = dict(request.body, model=model)
        body.pop('stream_options', None)
        body['stream'] = False
        resp = self._post(body, stream=False)
        if resp.status >= 400:
            self._raise_for(resp, resp.data)
        try:
            data = orjson.loads(resp.data)
        except orjson.JSONDecodeError:
            raise UpstreamFailed(
                f"Provider '{self.name}' answered with invalid JSON."
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get('choices'), list):
            raise UpstreamFailed(f"Provider '{self.name}' answered without choices.")
        return data

    def stream(self, request, model):
        body = dict(request.body, model=model, stream=True)
        if self.config.stream_usage:
            body['stream_options'] = dict(
                body.get('stream_options') or {}, include_usage=True
            )
        resp = self._post(body, stream=True)
        if resp.status >= 400:
            try:
                self._raise_for(resp, resp.read())
            finally:
                resp.release_conn()
        return self._events(resp)

    def _events(self, resp):
        done = False
        try:
            for line in iter_lines(resp):
                if not line.startswith(b'data:'):
                    continue  # comments, event names and blank separators
                payload = line[5:].strip()
                if payload == b'[DONE]':
                    done = True
                    break
                try:
                    chunk = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise UpstreamFailed(
                        f"Provider '{self.name}' sent a malformed stream event."
                    ) from None
                if 'error' in chunk:
                    err = chunk['error'] if isinstance(chunk['error'], dict) else {}
                    raise UpstreamFailed(
                        f"Provider '{self.name}' failed mid-stream: "
                        f'{str(err.get("message", ""))[:300]}'
                    )
                yield chunk
        except urllib3.exceptions.TimeoutError:
            raise UpstreamTimeout(
                f"Provider '{self.name}' stalled mid-stream."
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamFailed(
                f"Provider '{self.name}' broke the stream ({type(exc).__name__})."
            ) from None
        finally:
            if done:
                resp.release_conn()
            else:
                resp.close()  # NOTE: an unfinished stream cannot go back to the pool
        if not done:
            raise UpstreamFailed(f"Provider '{self.name}' ended the stream early.")
