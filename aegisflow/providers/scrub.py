"""Upstream text made fit to show: every secret the gateway holds for a provider
taken out, and the length bounded.

An upstream's error body is the only upstream text that reaches a client, a log
line or a span outside a successful answer, and it is hostile input: a provider (or
a proxy in front of it) may echo the request's headers, and real providers print
parts of the key they were given ("Incorrect API key provided: sk-proj-****abcd").
So before any of it is used, `Scrubber` removes:

- each secret the gateway holds for that provider (its API key, the values of its
  configured headers and query parameters), exactly;
- fragments of those secrets as providers print them: within a run of key
  characters, a piece of four or more characters that begins or ends a secret, or
  eight or more that occur in one, marks the whole run (``sk-proj-****abcd``,
  ``...abcd``, ``sk-pr…``);
- the value of any credential header line, wherever it stands (``Authorization:``,
  ``x-api-key=``, ``"api-key": "..."``, and the provider's own key header), and any
  ``Bearer`` token;
- anything the ``api_key``, ``jwt`` and ``private_key`` PII detectors recognise,
  whoever's it is;
- control characters (a log line stays one line).

Then the text is cut to `limit` characters. Each removal reads ``[REDACTED]``.
"""

import re

from aegisflow.policy import pii

MARK = '[REDACTED]'
LIMIT = 300
_READ_AT_MOST = 8192  # NOTE: the text examined; what is cut off is never shown
_FRAGMENT_EDGE = 4  # a piece that begins or ends a secret
_FRAGMENT_INNER = 8  # a piece found inside a secret
_MIN_SECRET = 8  # shorter configured header values (e.g. "true") are not secrets
_MIN_KEY = 4
_HEADERS = (
    'authorization',
    'proxy-authorization',
    'x-api-key',
    'api-key',
    'x-goog-api-key',
    'cookie',
    'set-cookie',
)
_RUN = re.compile(r'[A-Za-z0-9_\-*.…]{4,}')
_MASKING = re.compile(r'[*.…]+')
_BEARER = re.compile(r'(?i)\b(bearer|basic)\s+[A-Za-z0-9_\-.~+/=*]{4,}')
_CONTROL = re.compile(r'[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]')
_PII = frozenset(('api_key', 'jwt', 'private_key'))


def _header_pattern(names):
    alternatives = '|'.join(re.escape(n) for n in sorted(set(names), key=len)[::-1])
    # the name (maybe quoted), a ':' or '=', then the value up to the end of the
    # line or of a JSON string / field
    return re.compile(
        rf'(?i)(?<![A-Za-z0-9_\-])((?:{alternatives})["\']?\s*[:=]\s*)'
        r'(?:"[^"\r\n]*"?|\'[^\'\r\n]*\'?|[^\r\n,;}\]]*)'
    )


class Scrubber:
    """``scrub(text)``: `text` without the secrets of one provider, bounded."""

    __slots__ = ('_secrets', '_headers')

    def __init__(self, secrets=(), header_names=(), keys=()):
        # NOTE: a configured header value shorter than _MIN_SECRET ("true", "v2") is
        # not a secret; an API key is one whatever its length
        kept = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        kept |= {k for k in keys if k and len(k) >= _MIN_KEY}
        self._secrets = tuple(sorted(kept, key=len)[::-1])
        self._headers = _header_pattern(
            _HEADERS + tuple(n.lower() for n in header_names if n)
        )

    @classmethod
    def for_provider(cls, config):
        """A scrubber for every secret the gateway holds for provider `config`."""
        secrets = [str(v) for v in dict(config.headers).values()]
        secrets += [str(v) for v in dict(getattr(config, 'query', None) or {}).values()]
        names = list(dict(config.headers))
        if getattr(config, 'api_key_header', None):
            names.append(config.api_key_header)
        return cls(secrets, names, keys=[config.api_key or ''])

    def __call__(self, text, limit=LIMIT):
        if not text:
            return ''
        if not isinstance(text, str):
            text = str(text)
        text = text[:_READ_AT_MOST]
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MARK)
        text = self._headers.sub(lambda m: m.group(1) + MARK, text)
        text = _BEARER.sub(lambda m: m.group(1) + ' ' + MARK, text)
        if self._secrets:
            text = _RUN.sub(self._fragment, text)
        spans = pii.find(text, _PII)
        for _, start, end in reversed(spans):
            text = text[:start] + MARK + text[end:]
        text = _CONTROL.sub(' ', text).strip()
        if len(text) > limit:
            text = text[: limit - 1].rstrip() + '…'
        return text

    def _fragment(self, m):
        run = m.group()
        if run == MARK.strip('[]'):
            return run
        for piece in _MASKING.split(run):
            if len(piece) < _FRAGMENT_EDGE:
                continue
            for secret in self._secrets:
                if (
                    secret.startswith(piece)
                    or secret.endswith(piece)
                    or (len(piece) >= _FRAGMENT_INNER and piece in secret)
                ):
                    return MARK
        return run


NOTHING = Scrubber()
