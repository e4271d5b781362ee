"""OpenAI and any OpenAI-compatible server (vLLM, Groq, Together, Mistral, LM Studio,
Azure OpenAI deployments).

The request body is forwarded as the client sent it, with ``model`` replaced by the
upstream model. For streams the gateway asks for ``stream_options.include_usage`` so
it always learns the usage (unless ``stream_usage: false`` for servers that reject
it); the usage chunk is passed to the client only when the client asked for it.
``query`` adds query parameters to every URL and ``api_key_header`` sends the key in a
header of that name instead of ``Authorization: Bearer`` (Azure's ``api-key``).

The provider key comes from the provider's environment variable; the client's key is
never forwarded, and the client cannot choose the upstream URL.

``/v1/responses`` requests are passed through to it (``relay``) when it speaks the
Responses API: ``openai`` always, ``openai_compatible`` with ``responses: true``;
``response_op`` reads or deletes a response it holds.
"""

from contextlib import closing
from urllib.parse import quote
from urllib.parse import urlencode

import orjson

from aegisflow.errors import UpstreamFailed
from aegisflow.providers.http import HttpProvider
from aegisflow.providers.shape import chunk_problem
from aegisflow.providers.shape import completion_problem
from aegisflow.wire.relay import Relayed
from aegisflow.wire.relay import parse_events

# the events that end a Responses stream
_FINAL = ('response.completed', 'response.incomplete')


def _auth(config):
    if not config.api_key:
        return {}
    if config.api_key_header:
        return {config.api_key_header: config.api_key}
    return {'Authorization': f'Bearer {config.api_key}'}


class OpenAIProvider(HttpProvider):
    type = 'openai'
    embeddings = True
    structured_output = True

    def __init__(self, config, **options):
        super().__init__(
            config, headers={'Accept': 'application/json', **_auth(config)}, **options
        )
        query = '?' + urlencode(config.query) if config.query else ''
        self._query = query
        self._url = config.base_url + '/chat/completions' + query
        self._embeddings_url = config.base_url + '/embeddings' + query
        self._responses_url = config.base_url + '/responses' + query
        self._moderations_url = config.base_url + '/moderations' + query
        self.relays = frozenset(('responses',)) if config.responses else frozenset()

    def relay(self, native, model, stream):
        """A ``/v1/responses`` request passed through for `model`: the `Relayed`
        response, or for a stream the iterator of its events."""
        body = native.body_for(model)
        if not stream:
            raw, data = self.post_raw(self._responses_url, body)
            if data.get('object') != 'response' or not isinstance(
                data.get('output'), list
            ):
                raise self.protocol_error('an answer that is not a response')
            return Relayed(raw, data)
        return self._relayed(self.post_stream(self._responses_url, body))

    def _relayed(self, resp):
        ended = []
        with closing(self.lines(resp, lambda: bool(ended))) as lines:
            for event in parse_events(lines, self.protocol_error):
                data = event.data
                kind = data['type']
                if kind == 'error' or kind == 'response.failed':
                    error = data if kind == 'error' else data.get('response') or {}
                    if kind != 'error':
                        error = error.get('error') or {}
                    message = error.get('message') if isinstance(error, dict) else None
                    raise self.stream_failure(message or kind)
                if kind in _FINAL:
                    ended.append(kind)
                yield event
                if ended:
                    break

    def response_op(self, method, response_id):
        """(status, body bytes) of ``GET`` or ``DELETE /responses/{id}`` upstream;
        an error status other than 404 raises as any upstream error does."""
        url = f'{self._base_url}/responses/{quote(response_id, safe="")}{self._query}'
        resp = self._request(method, url)
        if resp.status >= 400 and resp.status != 404:
            self._raise_for(resp, resp.data)
        return resp.status, resp.data

    def complete(self, request, model):
        body = dict(request.body, model=model, stream=False)
        body.pop('stream_options', None)
        data = self.post_json(self._url, body)
        if not isinstance(data.get('choices'), list):
            raise UpstreamFailed(f"Provider '{self.name}' answered without choices.")
        problem = completion_problem(data)
        if problem:
            raise self.protocol_error(problem)
        return data

    def embed(self, request, model):
        data = self.post_json(self._embeddings_url, dict(request.body, model=model))
        if not isinstance(data.get('data'), list):
            raise UpstreamFailed(f"Provider '{self.name}' answered without embeddings.")
        return data

    def moderate(self, inputs, model):
        """OpenAI's moderation answer for `inputs` (strings, or multimodal parts),
        one result per input."""
        data = self.post_json(self._moderations_url, {'model': model, 'input': inputs})
        if not isinstance(data.get('results'), list):
            raise UpstreamFailed(
                f"Provider '{self.name}' answered a moderation without results."
            )
        return data

    def stream(self, request, model):
        body = dict(request.body, model=model, stream=True)
        if self.config.stream_usage:
            body['stream_options'] = dict(
                body.get('stream_options') or {}, include_usage=True
            )
        return self._events(self.post_stream(self._url, body))

    def _events(self, resp):
        done = False
        with closing(self.lines(resp, lambda: done)) as lines:
            for line in lines:
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
                if isinstance(chunk, dict) and 'error' in chunk:
                    err = chunk['error']
                    raise self.stream_failure(
                        err.get('message', '') if isinstance(err, dict) else err
                    )
                problem = chunk_problem(chunk)
                if problem:
                    raise self.protocol_error(problem)
                yield chunk
