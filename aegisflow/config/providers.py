"""The ``providers`` section: the upstreams, their keys, headers and prices."""

import dataclasses
import re
from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.common import _NAME
from aegisflow.config.common import _fail_unset
from aegisflow.config.common import _valid_url
from aegisflow.config.reader import REQUIRED

PROVIDER_TYPES = ('mock', 'openai', 'openai_compatible', 'anthropic', 'ollama')

_HTTP_KEYS = (
    'base_url',
    'base_url_env',
    'api_key_env',
    'timeout_s',
    'connect_timeout_s',
    'headers',
    'stream_usage',
    'responses',
    'query',
    'api_key_header',
)
_PROVIDER_COMMON = ('name', 'type', 'models', 'optional', 'prices')
_DEFAULT_BASE_URL = {
    'openai': 'https://api.openai.com/v1',
    'anthropic': 'https://api.anthropic.com/v1',
    'ollama': 'http://127.0.0.1:11434',
}
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


@dataclass(frozen=True, slots=True)
class MockOptions:
    """Behaviour of the built-in `mock` provider (see aegisflow/providers/mock.py)."""

    latency_ms: int = 0
    stream_chunk_delay_ms: int = 0
    stream_chunk_words: int = 1
    failure_rate: float = 0.0
    failure_status: int = 500
    seed: int | None = None


_MOCK_KEYS = tuple(MockOptions.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str
    models: tuple
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    headers: tuple = ()
    query: tuple = ()  # extra query parameters on every upstream URL
    api_key_header: str | None = None  # send the key in this header, not as Bearer
    stream_usage: bool = True
    responses: bool = False  # speaks /v1/responses (openai: always)
    mock: MockOptions | None = None
    prices: dict = field(default_factory=dict)  # model -> Price, overrides the table


class ProvidersSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def providers(self, node):
        out, seen = [], {}
        for item in node.list(min_items=1, what='a list of providers'):
            p = self.provider(item)
            if p is None:
                continue
            name = p if isinstance(p, str) else p.name
            if name in seen:
                item.get('name').fail(
                    f'a provider name not already used by {seen[name]}'
                )
                continue
            seen[name] = item.path
            if not isinstance(p, str):
                out.append(p)
        return out

    def provider(self, node):
        if not isinstance(node.value, dict):
            node.fail('a provider mapping with name, type and models')
            return None
        ptype = node.get('type').str(choices=PROVIDER_TYPES)
        extra = _MOCK_KEYS if ptype == 'mock' else _HTTP_KEYS if ptype else ()
        node.mapping(_PROVIDER_COMMON + extra)
        name = node.get('name').str(
            check=_NAME.match, expected='a name of letters, digits, _ . - (max 64)'
        )
        models = self.globs(node.get('models'), what='a list of model names or globs')
        optional = node.get('optional').bool(False)
        if name is None or ptype is None:
            return None
        prices = self.price_map(node.get('prices'))
        if ptype == 'mock':
            return ProviderConfig(
                name=name,
                type=ptype,
                models=models,
                mock=self.mock(node),
                prices=prices,
            )
        provider = self.http_provider(node, name, ptype, models, optional)
        if isinstance(provider, ProviderConfig):
            provider = dataclasses.replace(provider, prices=prices)
        return provider

    def mock(self, node):
        d = MockOptions()
        return MockOptions(
            latency_ms=node.get('latency_ms').int(d.latency_ms, min=0, max=600_000),
            stream_chunk_delay_ms=node.get('stream_chunk_delay_ms').int(
                d.stream_chunk_delay_ms, min=0, max=60_000
            ),
            stream_chunk_words=node.get('stream_chunk_words').int(
                d.stream_chunk_words, min=1, max=10_000
            ),
            failure_rate=node.get('failure_rate').num(d.failure_rate, min=0, max=1),
            failure_status=node.get('failure_status').int(
                d.failure_status, min=400, max=599
            ),
            seed=node.get('seed').int(None),
        )

    def http_provider(self, node, name, ptype, models, optional):
        missing = []
        api_key = self.env_value(
            node.get('api_key_env'), missing, required=ptype in ('openai', 'anthropic')
        )
        base_url = None
        url_env = node.get('base_url_env')
        url_node = node.get('base_url')
        if not url_env.missing and not url_node.missing:
            url_env.fail('either base_url or base_url_env, not both', found='both')
        elif not url_env.missing:
            base_url = self.env_value(url_env, missing, required=True)
            if base_url is not None and not _valid_url(base_url):
                url_env.fail(
                    'an environment variable holding an http(s) URL',
                    found=f'{base_url!r}',
                )
        else:
            base_url = url_node.str(
                _DEFAULT_BASE_URL.get(ptype, REQUIRED),
                check=_valid_url,
                expected='an http:// or https:// URL',
            )
        if missing:
            reasons = ', '.join(f'{var} is not set' for _, var in missing)
            if optional:
                self.disabled.append((name, reasons))
                return name
            _fail_unset(missing)
        return ProviderConfig(
            name=name,
            type=ptype,
            models=models,
            base_url=(base_url or '').rstrip('/'),
            api_key=api_key,
            timeout_s=node.get('timeout_s').num(600.0, min=0.001),
            connect_timeout_s=node.get('connect_timeout_s').num(10.0, min=0.001),
            headers=self.headers(node.get('headers')),
            query=self.query(node.get('query')),
            api_key_header=node.get('api_key_header').str(
                None, check=_HEADER_NAME.match, expected='an HTTP header name'
            ),
            stream_usage=node.get('stream_usage').bool(True),
            responses=self.speaks_responses(node.get('responses'), ptype),
        )

    @staticmethod
    def speaks_responses(node, ptype):
        """Whether the provider serves OpenAI's ``/v1/responses`` (requests there
        are then passed through to it): always for ``openai``, on request for
        ``openai_compatible``."""
        if ptype == 'openai':
            return node.bool(True)
        if ptype != 'openai_compatible' and not node.missing:
            node.fail(
                'no responses key unless type is openai_compatible',
                found=f'type {ptype}',
            )
            return False
        return node.bool(False)

    def headers(self, node):
        if node.missing:
            return ()
        if not isinstance(node.value, dict):
            node.fail('a mapping of header name to value')
            return ()
        out = []
        for key, child in node.items():
            if not _HEADER_NAME.match(str(key)):
                child.fail('an HTTP header name', found=f'{key!r}')
                continue
            value = child.str(
                expected='a header value without CR or LF',
                check=lambda v: '\r' not in v and '\n' not in v,
            )
            if value is not None:
                out.append((key, value))
        return tuple(out)

    def query(self, node):
        if node.missing:
            return ()
        if not isinstance(node.value, dict):
            node.fail('a mapping of query parameter to value')
            return ()
        out = []
        for key, child in node.items():
            value = child.str(expected='a query parameter value')
            if value is not None:
                out.append((str(key), value))
        return tuple(out)
