"""YAML file -> validated, immutable `Config` (DESIGN §5).

`load_config` reads the whole file, reports every problem at once (each naming the key
path, what was expected and what was found) and raises `ConfigError`; otherwise it
returns a `Config`. Environment variables named by ``*_env`` keys are resolved here,
and an unset one is an error only for what is enabled: a provider marked
``optional: true`` whose variables are unset is left out, with the reason recorded.
"""

import dataclasses
import hashlib
import os

import yaml

from aegisflow.config import model as m
from aegisflow.config.alerts import read_alerts
from aegisflow.config.cache import read_cache
from aegisflow.config.common import _ENV_NAME
from aegisflow.config.common import _DuplicateKeyLoader
from aegisflow.config.common import _fail_unset
from aegisflow.config.policies import read_policies
from aegisflow.config.prices import PricesSection
from aegisflow.config.providers import ProvidersSection
from aegisflow.config.reader import Node
from aegisflow.config.reader import Problem
from aegisflow.config.resilience import ResilienceSection
from aegisflow.config.routes import RoutesSection
from aegisflow.config.server import ServerSection
from aegisflow.config.storage import StorageSection
from aegisflow.config.telemetry import TelemetrySection
from aegisflow.config.tenants import TenantsSection
from aegisflow.errors import AegisError

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


class ConfigError(AegisError, ValueError):
    """The configuration is invalid; `problems` lists every reason."""

    def __init__(self, problems, *, source='<memory>'):
        self.problems = list(problems)
        self.source = source
        lines = '\n'.join(f'  - {p}' for p in self.problems)
        super().__init__(f'invalid configuration in {source}:\n{lines}')


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


class _Builder(
    ServerSection,
    ProvidersSection,
    RoutesSection,
    TenantsSection,
    TelemetrySection,
    StorageSection,
    ResilienceSection,
    PricesSection,
):
    """Reads a whole config: each section's reading lives beside its dataclass
    (`aegisflow.config.server`, ``providers``, ``routes``, ``tenants``,
    ``telemetry``, ``storage``, ``resilience``, ``prices``, ``policies``, ``cache``,
    ``alerts``); this class holds what they share: the problems found, the
    environment, the config's directory."""

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
        # NOTE: guard policies name providers and models: they check against these
        self.built_providers, self.built_routes = providers, routes
        self.built_aliases = aliases
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

    # -- providers -----------------------------------------------------------------

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

    # -- routes and aliases --------------------------------------------------------

    # -- tenants -------------------------------------------------------------------

    # -- telemetry -----------------------------------------------------------------

    # -- state, storage, prices -------------------------------------------------
