"""YAML file -> validated, immutable `Config` (DESIGN §5).

`load_config` reads the whole file, reports every problem at once (each naming the key
path, what was expected and what was found) and raises `ConfigError`; otherwise it
returns a `Config`. Environment variables named by ``*_env`` keys are resolved here,
and an unset one is an error only for what is enabled: a provider marked
``optional: true`` whose variables are unset is left out, with the reason recorded.
"""

import dataclasses
import hashlib
import importlib
import ipaddress
import os
import re
from urllib.parse import urlsplit

import yaml

from aegisflow import shipped
from aegisflow.config import model as m
from aegisflow.config.alerts import read_alerts
from aegisflow.config.cache import read_cache
from aegisflow.config.cache import read_override
from aegisflow.config.otel_env import OtelEnv
from aegisflow.config.policies import read_policies
from aegisflow.config.reader import REQUIRED
from aegisflow.config.reader import Node
from aegisflow.config.reader import Problem
from aegisflow.config.scope import KEY_SCOPE_KEYS
from aegisflow.config.scope import read_budget
from aegisflow.config.scope import read_globs
from aegisflow.config.scope import read_key_scope
from aegisflow.config.scope import read_model_limits
from aegisflow.config.scope import read_rate_limit
from aegisflow.errors import AegisError
from aegisflow.globs import GlobSet
from aegisflow.globs import is_glob
from aegisflow.globs import is_valid_glob

_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z')
_ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
_HEX64 = re.compile(r'[0-9a-fA-F]{64}\Z')
_DOTTED = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z')
_HOSTNAME = re.compile(r'[A-Za-z0-9]([A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?\Z')
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

_TOP = (
    'server',
    'providers',
    'routes',
    'aliases',
    'tenants',
    'telemetry',
    'state',
    'storage',
    'prices',
    'limits',
    'retry',
    'circuit_breaker',
    'policies',
    'cache',
    'alerts',
)
_PRICES = 'prices.yaml'  # the shipped price table
_SERVICE = re.compile(r'\S.{0,254}\Z')
_SERVER = tuple(f for f in m.ServerConfig.__dataclass_fields__ if f != 'admin_key') + (
    'admin_key_env',
)
_MOCK_KEYS = tuple(m.MockOptions.__dataclass_fields__)
# connections a cooperative (gevent) worker serves at once by default
_COOPERATIVE_CONNECTIONS = m.ServerConfig().worker_connections
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
_PRICE_KEYS = ('input', 'output', 'cached_input', 'cache_write_input')
_TENANT_KEYS = (
    'id',
    'keys',
    'allowed_models',
    'rate_limit',
    'user_rate_limit',
    'model_limits',
    'budget',
    'policies',
    'cache',
)
_DEFAULT_BASE_URL = {
    'openai': 'https://api.openai.com/v1',
    'anthropic': 'https://api.anthropic.com/v1',
    'ollama': 'http://127.0.0.1:11434',
}


class ConfigError(AegisError, ValueError):
    """The configuration is invalid; `problems` lists every reason."""

    def __init__(self, problems, *, source='<memory>'):
        self.problems = list(problems)
        self.source = source
        lines = '\n'.join(f'  - {p}' for p in self.problems)
        super().__init__(f'invalid configuration in {source}:\n{lines}')


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f'duplicate key {key!r} (line {mark.line + 1})', mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_DuplicateKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_config(path, *, env=None):
    """Read and validate the YAML file at `path`."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(
            [Problem('', 'a readable YAML file', f'{exc.strerror} ({path})')],
            source=path,
        ) from None
    base_dir = os.path.dirname(os.path.abspath(path))
    return parse_config(raw, source=str(path), env=env, base_dir=base_dir)


def parse_config(raw, *, source='<memory>', env=None, base_dir=None):
    """Validate YAML text. Relative paths in it resolve against `base_dir` (the config
    file's directory; the working directory for text with no file)."""
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        data = yaml.load(raw, Loader=_DuplicateKeyLoader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        where = ''
        mark = getattr(exc, 'problem_mark', None)
        if mark is not None:
            where = f' at line {mark.line + 1}, column {mark.column + 1}'
        what = getattr(exc, 'problem', None) or str(exc)
        raise ConfigError(
            [Problem('', 'valid YAML', f'{what}{where}')], source=source
        ) from None
    env = os.environ if env is None else env
    problems = []
    base_dir = base_dir or os.getcwd()
    config = _Builder(problems, env, base_dir).build(Node(data, '', problems))
    if problems:
        raise ConfigError(problems, source=source)
    # NOTE: a plugin's bytes are part of the config: a changed plugin is a new
    # version, though the YAML is the same
    h = hashlib.sha256(raw)
    for policy in config.policies:
        h.update(policy.options.get('digest', '').encode())
    return dataclasses.replace(config, source=source, digest=h.hexdigest()[:16])


class _Builder:
    def __init__(self, problems, env, base_dir):
        self.problems = problems
        self.env = env
        self.base_dir = base_dir
        self.disabled = []
        self.policy_refs = []  # (node, name) of tenants' policy lists

    def build(self, root):
        if not root.mapping(_TOP):
            return None
        server = self.server(root.get('server'))
        providers = self.providers(root.get('providers'))
        names = {p.name for p in providers}
        known = names | {n for n, _ in self.disabled}
        routes = self.routes(root.get('routes'), names, known)
        aliases = self.aliases(root.get('aliases'), routes, providers)
        tenants = self.tenants(root.get('tenants'))
        telemetry = self.telemetry(root.get('telemetry'))
        policies = read_policies(self, root.get('policies'))
        known_policies = {p.name for p in policies}
        for ref, name in self.policy_refs:
            if name not in known_policies:
                ref.fail('the name of a policy under policies.input or policies.output')
        state = self.state(root.get('state'))
        return m.Config(
            policies=policies,
            cache=read_cache(self, root.get('cache'), state),
            alerts=read_alerts(self, root.get('alerts')),
            server=server,
            providers=tuple(providers),
            routes=tuple(routes),
            aliases=aliases,
            tenants=tuple(tenants),
            telemetry=telemetry,
            state=state,
            storage=self.storage(root.get('storage')),
            limits=self.limits(root.get('limits')),
            retry=self.retry(root.get('retry')),
            circuit_breaker=self.breaker(root.get('circuit_breaker')),
            prices=self.price_file(root.get('prices')),
            disabled=tuple(self.disabled),
        )

    # -- server ------------------------------------------------------------------

    def server(self, node):
        d = m.ServerConfig()
        if not node.mapping(_SERVER, optional=True):
            return d  # NOTE: the default class's default connections
        worker_class = node.get('worker_class').str(
            d.worker_class, choices=m.WORKER_CLASSES
        )
        gthread = worker_class == 'gthread'
        threads = node.get('threads').int(d.threads, min=1, max=10000)
        trusted = self.networks(node.get('trusted_proxies'))
        proxy_protocol = node.get('proxy_protocol').str(
            d.proxy_protocol, choices=m.PROXY_PROTOCOLS
        )
        if proxy_protocol not in (None, 'off') and not trusted:
            node.get('proxy_protocol').fail(
                'off, or trusted_proxies naming the balancers that send it',
                found=repr(proxy_protocol),
            )
        return m.ServerConfig(
            bind=node.get('bind').str(
                d.bind,
                check=_valid_bind,
                expected='HOST:PORT (port 1-65535) or unix:PATH',
            ),
            workers=node.get('workers').int(d.workers, min=1, max=256),
            worker_class=worker_class,
            threads=threads,
            worker_connections=node.get('worker_connections').int(
                threads + 1024 if gthread else _COOPERATIVE_CONNECTIONS,
                min=threads + 1 if gthread else 1,
                max=1000000,
            ),
            max_body_bytes=node.get('max_body_bytes').int(d.max_body_bytes, min=1024),
            timeout_s=node.get('timeout_s').int(d.timeout_s, min=1),
            graceful_timeout_s=node.get('graceful_timeout_s').int(
                d.graceful_timeout_s, min=0
            ),
            keepalive_s=node.get('keepalive_s').int(d.keepalive_s, min=0),
            body_timeout_s=node.get('body_timeout_s').num(
                d.body_timeout_s, min=0.1, max=3600
            ),
            header_timeout_s=node.get('header_timeout_s').num(
                d.header_timeout_s, min=0.5, max=3600
            ),
            body_min_bytes_per_s=node.get('body_min_bytes_per_s').int(
                d.body_min_bytes_per_s, min=0, max=1 << 30
            ),
            failed_auth_per_minute=node.get('failed_auth_per_minute').int(
                d.failed_auth_per_minute, min=0, max=1_000_000
            ),
            trusted_proxies=trusted,
            proxy_protocol=proxy_protocol or d.proxy_protocol,
            admin_key=(
                None
                if node.get('admin_key_env').missing
                else self.required_env(node.get('admin_key_env'))
            ),
        )

    @staticmethod
    def networks(node):
        """A list of IP networks in CIDR notation (a bare address is one host)."""
        out = []
        for item in node.list((), what='a list of addresses or CIDR networks'):
            text = item.str(expected='an address or a CIDR network (10.0.0.0/8)')
            if text is None:
                continue
            try:
                out.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                item.fail('an address or a CIDR network (10.0.0.0/8)')
        return tuple(out)

    # -- providers -----------------------------------------------------------------

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
        ptype = node.get('type').str(choices=m.PROVIDER_TYPES)
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
            return m.ProviderConfig(
                name=name,
                type=ptype,
                models=models,
                mock=self.mock(node),
                prices=prices,
            )
        provider = self.http_provider(node, name, ptype, models, optional)
        if isinstance(provider, m.ProviderConfig):
            provider = dataclasses.replace(provider, prices=prices)
        return provider

    def mock(self, node):
        d = m.MockOptions()
        return m.MockOptions(
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
        return m.ProviderConfig(
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

    def required_env(self, node):
        """The value of the variable a ``*_env`` key names; unset is a problem."""
        missing = []
        value = self.env_value(node, missing, required=True)
        _fail_unset(missing)
        return value

    def env_value(self, node, missing, *, required):
        """The value of the environment variable a ``*_env`` key names."""
        if node.missing:
            if required:
                node.fail('the name of an environment variable')
            return None
        var = node.str(check=_ENV_NAME.match, expected='an environment variable name')
        if var is None:
            return None
        value = self.env.get(var)
        if not value:
            missing.append((node, var))
            return None
        return value

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

    def globs(self, node, *, what):
        return read_globs(node, what=what)

    # -- routes and aliases --------------------------------------------------------

    def routes(self, node, names, known):
        out = []
        for item in node.list(min_items=1, what='a list of routes'):
            if not item.mapping(('match', 'targets', 'strategy', 'class', 'cache')):
                continue
            match = item.get('match').str(
                check=is_valid_glob, expected='a model glob (no spaces, balanced [])'
            )
            strategy = item.get('strategy').str('priority', choices=m.STRATEGIES)
            klass = item.get('class').str(
                None,
                check=_DOTTED.match,
                expected='a dotted path: package.module.Class',
            )
            if strategy == 'custom' and klass is None and item.get('class').missing:
                item.get('class').fail('a dotted class path for strategy custom')
            elif klass is not None and strategy != 'custom':
                item.get('class').fail('class only with strategy: custom')
            elif klass is not None:
                _check_strategy_class(item.get('class'), klass)
            targets = []
            for t in item.get('targets').list(min_items=1, what='a list of targets'):
                target = self.target(t, names, known)
                if target is not None:
                    targets.append(target)
            if match is None or strategy is None:
                continue
            if targets:
                out.append(
                    m.RouteConfig(
                        match=match,
                        targets=tuple(targets),
                        strategy=strategy,
                        strategy_class=klass,
                        cache=read_override(item.get('cache')),
                    )
                )
        return out

    def target(self, node, names, known):
        if isinstance(node.value, str):
            provider, model, weight, pnode = node.value, None, 1, node
        elif node.mapping(('provider', 'model', 'weight')):
            pnode = node.get('provider')
            provider = pnode.str()
            model = node.get('model').str(None)
            weight = node.get('weight').int(1, min=1, max=1_000_000)
        else:
            return None
        if provider is None:
            return None
        if provider not in known:
            choices = ', '.join(sorted(known)) or '(none declared)'
            pnode.fail(f'the name of a declared provider ({choices})')
            return None
        if provider not in names:
            return None  # optional provider, switched off: the route loses this target
        return m.Target(provider=provider, model=model, weight=weight)

    def aliases(self, node, routes, providers):
        if node.missing:
            return {}
        if not isinstance(node.value, dict):
            node.fail('a mapping of alias name to model name')
            return {}
        out = {}
        for key, child in node.items():
            if not isinstance(key, str) or not _NAME.match(key) or is_glob(key):
                child.fail('an alias name of letters, digits, _ . -', found=f'{key!r}')
                continue
            target = child.str(expected='a model name')
            if target is None:
                continue
            if not _servable(target, routes, providers):
                child.fail('a model that some route serves')
                continue
            out[key] = target
        return out

    # -- tenants -------------------------------------------------------------------

    def tenants(self, node):
        out, ids, digests = [], {}, {}
        for item in node.list(min_items=1, what='a list of tenants'):
            if not item.mapping(_TENANT_KEYS):
                continue
            tid = item.get('id').str(
                check=_NAME.match, expected='an id of letters, digits, _ . - (max 64)'
            )
            if tid is not None and tid in ids:
                item.get('id').fail(f'a tenant id not already used by {ids[tid]}')
            elif tid is not None:
                ids[tid] = item.path
            keys = []
            for i, knode in enumerate(
                item.get('keys').list(min_items=1, what='a list of keys')
            ):
                key = self.key(knode, i, digests)
                if key is not None:
                    if any(k.name == key.name for k in keys):
                        knode.get('name').fail('a key name unique within the tenant')
                    keys.append(key)
            allowed = ('*',)
            if not item.get('allowed_models').missing:
                allowed = self.globs(
                    item.get('allowed_models'), what='a list of model names or globs'
                )
            if tid is not None:
                out.append(
                    m.TenantConfig(
                        id=tid,
                        keys=tuple(keys),
                        allowed_models=allowed,
                        rate_limit=self.rate_limit(item.get('rate_limit')),
                        user_rate_limit=self.rate_limit(item.get('user_rate_limit')),
                        model_limits=self.model_limits(item.get('model_limits')),
                        budget=self.budget(item.get('budget')),
                        policies=self.tenant_policies(item.get('policies')),
                        cache=read_override(item.get('cache')),
                    )
                )
        return out

    def tenant_policies(self, node):
        """The names of the policies a tenant runs (None: every policy)."""
        if node.missing:
            return None
        names = []
        for ref in node.list(what='a list of policy names'):
            name = ref.str(expected='a policy name')
            if name is not None:
                self.policy_refs.append((ref, name))
                names.append(name)
        return tuple(names)

    def rate_limit(self, node):
        return read_rate_limit(node)

    def model_limits(self, node):
        return read_model_limits(node)

    def budget(self, node):
        return read_budget(node)

    def retry(self, node):
        d = m.RetryPolicy()
        keys = tuple(m.RetryPolicy.__dataclass_fields__)
        if not node.mapping(keys, optional=True):
            return d
        retry_on = d.retry_on
        if not node.get('retry_on').missing:
            statuses = [
                s.int(min=400, max=599)
                for s in node.get('retry_on').list(what='a list of HTTP statuses')
            ]
            retry_on = tuple(s for s in statuses if s is not None)
        return m.RetryPolicy(
            max_attempts=node.get('max_attempts').int(d.max_attempts, min=1, max=20),
            initial_backoff_ms=node.get('initial_backoff_ms').int(
                d.initial_backoff_ms, min=0, max=60_000
            ),
            max_backoff_ms=node.get('max_backoff_ms').int(
                d.max_backoff_ms, min=0, max=600_000
            ),
            multiplier=node.get('multiplier').num(d.multiplier, min=1, max=10),
            jitter=node.get('jitter').num(d.jitter, min=0, max=1),
            retry_on=retry_on,
            total_timeout_s=node.get('total_timeout_s').num(
                d.total_timeout_s, min=0.1, max=3600
            ),
            max_retry_after_s=node.get('max_retry_after_s').num(
                d.max_retry_after_s, min=0, max=600
            ),
        )

    def breaker(self, node):
        d = m.BreakerPolicy()
        if not node.mapping(tuple(m.BreakerPolicy.__dataclass_fields__), optional=True):
            return d
        return m.BreakerPolicy(
            failure_threshold=node.get('failure_threshold').num(
                d.failure_threshold, min=0.01, max=1
            ),
            consecutive_failures=node.get('consecutive_failures').int(
                d.consecutive_failures, min=1, max=100_000
            ),
            window_s=node.get('window_s').num(d.window_s, min=1, max=3600),
            min_calls=node.get('min_calls').int(d.min_calls, min=1, max=1_000_000),
            open_s=node.get('open_s').num(d.open_s, min=0.1, max=3600),
            half_open_probes=node.get('half_open_probes').int(
                d.half_open_probes, min=1, max=1000
            ),
            enabled=node.get('enabled').bool(d.enabled),
        )

    def limits(self, node):
        d = m.LimitsConfig()
        if not node.mapping(('default_completion_tokens', 'headers'), optional=True):
            return d
        return m.LimitsConfig(
            default_completion_tokens=node.get('default_completion_tokens').int(
                d.default_completion_tokens, min=1, max=10**7
            ),
            headers=node.get('headers').bool(d.headers),
        )

    def key(self, node, index, digests):
        sources = ('key', 'key_env', 'key_sha256')
        if not node.mapping(sources + ('name',) + KEY_SCOPE_KEYS):
            return None
        given = [s for s in sources if not node.get(s).missing]
        if len(given) != 1:
            node.fail(
                'exactly one of key, key_env, key_sha256',
                found=', '.join(given) if given else 'none of them',
            )
            return None
        source = node.get(given[0])
        if given[0] == 'key':
            secret = source.str(secret=True, expected='a non-empty string')
            digest = hashlib.sha256(secret.encode()).digest() if secret else None
        elif given[0] == 'key_env':
            secret = self.required_env(source)
            digest = hashlib.sha256(secret.encode()).digest() if secret else None
        else:
            hexed = source.str(check=_HEX64.match, expected='64 hexadecimal characters')
            digest = bytes.fromhex(hexed) if hexed else None
        name = node.get('name').str(
            f'key{index}',
            check=_NAME.match,
            expected='a key name of letters, digits, _ . -',
        )
        if digest is None:
            return None
        if digest in digests:
            node.fail(
                'a key not used elsewhere', found=f'the same key as {digests[digest]}'
            )
            return None
        digests[digest] = node.path
        return m.KeyConfig(digest=digest, name=name, scope=read_key_scope(node))

    # -- telemetry -----------------------------------------------------------------

    def telemetry(self, node):
        d = m.TelemetryConfig()
        keys = (
            'log_format',
            'log_level',
            'access_log',
            'metrics',
            'metrics_token_env',
            'flush_interval_ms',
            'traces',
        )
        if not node.mapping(keys, optional=True):
            return d
        token = None
        if not node.get('metrics_token_env').missing:
            token = self.required_env(node.get('metrics_token_env'))
        return m.TelemetryConfig(
            log_format=node.get('log_format').str(d.log_format, choices=m.LOG_FORMATS),
            log_level=node.get('log_level').str(d.log_level, choices=m.LOG_LEVELS),
            access_log=node.get('access_log').bool(d.access_log),
            metrics=node.get('metrics').bool(d.metrics),
            metrics_token=token,
            flush_interval_ms=node.get('flush_interval_ms').int(
                d.flush_interval_ms, min=10, max=5000
            ),
            traces=self.traces(node.get('traces')),
        )

    def traces(self, node):
        """``telemetry.traces``; what it leaves unset comes from OTEL_* variables."""
        d = m.TracesConfig()
        keys = (
            'exporter',
            'endpoint',
            'headers',
            'sample_ratio',
            'timeout_s',
            'service_name',
        )
        node.mapping(keys, optional=True)
        env = OtelEnv(self.env)
        for path, expected, found in env.problems:
            self.problems.append(Problem(path, expected, found))
        exporter = node.get('exporter').str(None, choices=m.TRACE_EXPORTERS)
        if node.get('exporter').missing:
            exporter = 'none' if env.disabled else env.exporter
            if exporter is None:
                exporter = env.otlp if env.endpoint else d.exporter
        endpoint = node.get('endpoint').str(
            None, check=_valid_url, expected='an http:// or https:// URL'
        )
        if node.get('endpoint').missing and env.endpoint is not None:
            endpoint = env.endpoint
            if not _valid_url(endpoint):
                self.problems.append(
                    Problem(
                        f'${env.endpoint_var}',
                        'an http:// or https:// URL',
                        repr(endpoint),
                    )
                )
        if exporter in ('otlp_http', 'otlp_grpc') and endpoint is None:
            if node.get('endpoint').missing:
                node.get('endpoint').fail(
                    f'an endpoint URL for exporter {exporter} (or '
                    'OTEL_EXPORTER_OTLP_ENDPOINT)'
                )
        headers = node.get('headers')
        ratio = node.get('sample_ratio')
        timeout = node.get('timeout_s')
        service = node.get('service_name').str(
            None, check=_SERVICE.match, expected='a service name (1-255 characters)'
        )
        return m.TracesConfig(
            exporter=exporter,
            endpoint=endpoint,
            headers=self.headers(headers)
            if not headers.missing or env.headers is None
            else tuple(env.headers),
            sample_ratio=ratio.num(d.sample_ratio, min=0, max=1)
            if not ratio.missing or env.ratio is None
            else env.ratio,
            parent_based=True
            if not ratio.missing or env.parent_based is None
            else env.parent_based,
            timeout_s=timeout.num(d.timeout_s, min=0.1, max=60)
            if not timeout.missing or env.timeout_s is None
            else env.timeout_s,
            service_name=service or env.service_name or d.service_name,
            resource=tuple((k, v) for k, v in env.resource if k != 'service.name'),
        )

    # -- state, storage, prices -------------------------------------------------

    def state(self, node):
        d = m.StateConfig()
        keys = (
            'backend',
            'shm',
            'redis_url',
            'redis_url_env',
            'on_backend_error',
            'key_prefix',
            'redis_timeout_ms',
        )
        if not node.mapping(keys, optional=True):
            return d
        backend = node.get('backend').str(d.backend, choices=m.STATE_BACKENDS)
        redis_url = self.redis_url(node, backend)
        common = dict(
            backend=backend,
            redis_url=redis_url,
            on_backend_error=node.get('on_backend_error').str(
                d.on_backend_error, choices=m.BACKEND_ERROR_MODES
            ),
            key_prefix=node.get('key_prefix').str(
                d.key_prefix, check=_NAME.match, expected='letters, digits, _ . -'
            ),
            redis_timeout_ms=node.get('redis_timeout_ms').int(
                d.redis_timeout_ms, min=1, max=60_000
            ),
        )
        shm = node.get('shm')
        ds = m.ShmConfig()
        if not shm.mapping(tuple(m.ShmConfig.__dataclass_fields__), optional=True):
            return m.StateConfig(**common)
        ring = shm.get('ring_records').int(ds.ring_records, min=64, max=1 << 20)
        if ring & (ring - 1):
            shm.get('ring_records').fail('a power of two from 64 to 1048576')
            ring = ds.ring_records
        return m.StateConfig(
            **common,
            shm=m.ShmConfig(
                ring_records=ring,
                metric_cells=shm.get('metric_cells').int(
                    ds.metric_cells, min=64, max=1 << 20
                ),
                lock_timeout_ms=shm.get('lock_timeout_ms').int(
                    ds.lock_timeout_ms, min=1, max=10_000
                ),
                keep_names=shm.get('keep_names').bool(ds.keep_names),
                limit_entries=shm.get('limit_entries').int(
                    ds.limit_entries, min=1024, max=1 << 24
                ),
                runtime_names=shm.get('runtime_names').int(
                    ds.runtime_names, min=64, max=1 << 20
                ),
            ),
        )

    def redis_url(self, node, backend):
        url_node, env_node = node.get('redis_url'), node.get('redis_url_env')
        if not url_node.missing and not env_node.missing:
            env_node.fail('either redis_url or redis_url_env, not both', found='both')
            return None
        if not env_node.missing:
            url = self.required_env(env_node)
        elif not url_node.missing:
            url = url_node.str(expected='a redis:// URL', secret=True)
        else:
            if backend == 'redis':
                url_node.fail('a redis:// URL (or redis_url_env) for backend redis')
            return None
        if url is not None and not url.startswith(('redis://', 'rediss://', 'unix://')):
            (env_node if not env_node.missing else url_node).fail(
                'a redis://, rediss:// or unix:// URL', found='another scheme'
            )
            return None
        return url

    def storage(self, node):
        d = m.StorageConfig()
        if not node.mapping(
            (
                'backend',
                'sqlite_path',
                'dsn',
                'dsn_env',
                'retention_days',
                'responses_ttl_s',
                'responses_max_bytes',
            ),
            optional=True,
        ):
            return m.StorageConfig(
                sqlite_path=os.path.join(self.base_dir, d.sqlite_path)
            )
        backend = node.get('backend').str(d.backend, choices=m.STORAGE_BACKENDS)
        path = node.get('sqlite_path').str(d.sqlite_path, expected='a file path')
        return m.StorageConfig(
            backend=backend,
            sqlite_path=os.path.join(self.base_dir, path or ''),
            dsn=self.dsn(node, backend),
            retention_days=node.get('retention_days').num(None, min=0.01, max=36500),
            responses_ttl_s=node.get('responses_ttl_s').num(
                d.responses_ttl_s, min=1, max=3650 * 86400
            ),
            responses_max_bytes=node.get('responses_max_bytes').int(
                d.responses_max_bytes, min=1024, max=1 << 30
            ),
        )

    def dsn(self, node, backend):
        """``storage.dsn`` or ``storage.dsn_env``: a PostgreSQL URI
        (postgresql://user:password@host:port/db) or libpq key=value string."""
        dsn_node, env_node = node.get('dsn'), node.get('dsn_env')
        if not dsn_node.missing and not env_node.missing:
            env_node.fail('either dsn or dsn_env, not both', found='both')
            return None
        expected = 'a PostgreSQL DSN (postgresql://... or key=value pairs)'
        if not env_node.missing:
            dsn, where = self.required_env(env_node), env_node
        elif not dsn_node.missing:
            dsn, where = dsn_node.str(expected=expected, secret=True), dsn_node
        else:
            if backend == 'postgresql':
                dsn_node.fail(f'{expected} (or dsn_env) for backend postgresql')
            return None
        if dsn is None:
            return None
        if not (dsn.startswith(('postgresql://', 'postgres://')) or '=' in dsn):
            where.fail(expected, found='another form')
            return None
        if backend != 'postgresql':
            where.fail(
                'no DSN unless storage.backend is postgresql',
                found=f'backend {backend}',
            )
        return dsn

    def price_file(self, node):
        """The top-level ``prices`` key: a YAML file of ``{model: {input, output,
        cached_input, cache_write_input}}`` in USD per million tokens. Without it,
        prices.yaml beside the config when there is one, else the table that ships
        with the gateway. (A provider's own ``prices`` win over whichever it is.)"""
        default = os.path.join(self.base_dir, 'prices.yaml')
        if node.missing:
            path = default if os.path.exists(default) else str(shipped.path(_PRICES))
        else:
            rel = node.str(expected='the path of a prices YAML file')
            if rel is None:
                return {}
            path = os.path.join(self.base_dir, rel)
        try:
            with open(path, 'rb') as f:
                data = yaml.load(f, Loader=_DuplicateKeyLoader)  # noqa: S506
        except (OSError, yaml.YAMLError) as exc:
            node.fail(
                'a readable prices YAML file',
                found=f'{type(exc).__name__}: '
                f'{getattr(exc, "strerror", None) or exc} ({path})',
            )
            return {}
        sub = Node(data, f'prices({os.path.basename(path)})', self.problems)
        if not sub.mapping(('models',)):
            return {}
        return self.price_map(sub.get('models'))

    def price_map(self, node):
        if node.missing:
            return {}
        if not isinstance(node.value, dict):
            node.fail(
                'a mapping of model name to {input, output, cached_input, '
                'cache_write_input}'
            )
            return {}
        out = {}
        for model, child in node.items():
            if not child.mapping(_PRICE_KEYS):
                continue
            inp = child.get('input').num(min=0)
            outp = child.get('output').num(min=0)
            cached = child.get('cached_input').num(None, min=0)
            written = child.get('cache_write_input').num(None, min=0)
            if inp is not None and outp is not None:
                out[str(model)] = m.Price(
                    input=inp,
                    output=outp,
                    cached_input=cached,
                    cache_write_input=written,
                )
        return out


def _check_strategy_class(node, path):
    """A custom strategy must import and have an ``order`` method (checked at load,
    so a typo fails the start, not a request)."""
    module_name, _, name = path.rpartition('.')
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except Exception as exc:  # noqa: BLE001 (any import failure is the user's to see)
        node.fail('an importable class', found=f'{path} ({type(exc).__name__}: {exc})')
        return
    if not callable(getattr(cls, 'order', None)):
        node.fail('a class with an order(targets, request) method', found=path)


def _fail_unset(missing):
    for env_node, var in missing:
        env_node.fail(f'environment variable {var} to be set', found='it unset')


def _servable(model, routes, providers):
    serves = {p.name: GlobSet(p.models) for p in providers}
    for route in routes:
        if GlobSet([route.match])(model):
            for t in route.targets:
                if t.model or (t.provider in serves and serves[t.provider](model)):
                    return True
    return False


def _valid_bind(value):
    if value.startswith('unix:'):
        return len(value) > 5
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return False
    if host.startswith('[') and host.endswith(']'):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    return bool(_HOSTNAME.match(host))


def _valid_url(value):
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ('http', 'https') and bool(parts.hostname)
