"""Anthropic's Messages API as an upstream: the HTTP side (URL, headers, errors,
the event stream's lines); the translation both ways is the Anthropic codec's
(`aegisflow.wire.anthropic`: ``to_messages``, ``from_message``,
`StreamTranslator`), which ``/v1/messages`` shares. A ``/v1/messages`` request is
passed through untranslated (``relay``, `aegisflow.wire.relay`).
"""

import time
from contextlib import closing

import orjson

from aegisflow.errors import UpstreamFailed
from aegisflow.providers.http import HttpProvider
from aegisflow.providers.shape import chunk_problem
from aegisflow.providers.shape import completion_problem
from aegisflow.wire.anthropic import StreamTranslator
from aegisflow.wire.anthropic import from_message
from aegisflow.wire.anthropic import to_messages
from aegisflow.wire.relay import Relayed
from aegisflow.wire.relay import parse_events

VERSION = '2023-06-01'


class AnthropicProvider(HttpProvider):
    type = 'anthropic'
    relays = frozenset(('messages',))

    def __init__(self, config, **options):
        auth = {'x-api-key': config.api_key} if config.api_key else {}
        super().__init__(
            config, headers={'anthropic-version': VERSION, **auth}, **options
        )
        self._url = config.base_url + '/messages'

    def complete(self, request, model):
        data = self.post_json(self._url, to_messages(request, model))
        if data.get('type') != 'message':
            raise UpstreamFailed(f"Provider '{self.name}' answered without a message.")
        with self.reading():
            out = from_message(data)
        problem = completion_problem(out)
        if problem:
            raise self.protocol_error(problem)
        return out

    def count_tokens(self, body, model):
        """Anthropic's own count of a Messages body (``/v1/messages/count_tokens``)
        for `model`: ``{'input_tokens': N}``."""
        data = self.post_json(self._url + '/count_tokens', dict(body, model=model))
        tokens = data.get('input_tokens')
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise self.protocol_error('a token count that is not a count')
        return {'input_tokens': tokens}

    def relay(self, native, model, stream):
        """A `Native` Messages request passed through for `model`: the `Relayed`
        message, or for a stream the iterator of its `Event`s (the client's
        ``anthropic-version`` and ``anthropic-beta`` go with it; an
        ``anthropic-beta`` the provider's configuration sets is kept beside the
        client's)."""
        headers = dict(native.headers)
        beta = self._headers.get('anthropic-beta')
        if beta and headers.get('anthropic-beta'):
            headers['anthropic-beta'] = f'{beta},{headers["anthropic-beta"]}'
        body = native.body_for(model)
        if not stream:
            raw, data = self.post_raw(self._url, body, headers)
            if data.get('type') != 'message' or not isinstance(
                data.get('content'), list
            ):
                raise self.protocol_error('an answer that is not a message')
            return Relayed(raw, data)
        return self._relayed(self.post_stream(self._url, body, headers))

    def _relayed(self, resp):
        ended = []
        with closing(self.lines(resp, lambda: bool(ended))) as lines:
            for event in parse_events(lines, self.protocol_error):
                kind = event.data['type']
                if kind == 'error':
                    error = event.data.get('error')
                    if isinstance(error, dict):
                        error = f'{error.get("type", "")}: {error.get("message", "")}'
                    raise self.stream_failure(error)
                if kind == 'message_stop':
                    ended.append(kind)
                yield event
                if ended:
                    break

    def stream(self, request, model):
        body = to_messages(request, model)
        body['stream'] = True
        return self._events(self.post_stream(self._url, body))

    def _events(self, resp):
        translator = StreamTranslator(int(time.time()), self.stream_failure)
        with closing(self.lines(resp, lambda: translator.finished)) as lines:
            for line in lines:
                if not line.startswith(b'data:'):
                    continue  # event names, comments and blank separators
                try:
                    event = orjson.loads(line[5:].strip())
                except orjson.JSONDecodeError:
                    raise UpstreamFailed(
                        f"Provider '{self.name}' sent a malformed stream event."
                    ) from None
                if not isinstance(event, dict):
                    raise self.protocol_error('a stream event that is not an object')
                with self.reading():
                    chunks = translator.feed(event)
                for chunk in chunks:
                    problem = chunk_problem(chunk)
                    if problem:
                        raise self.protocol_error(problem)
                    yield chunk
                if translator.finished:
                    break
