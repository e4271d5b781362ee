"""The ``policies`` section: ``{input: [...], output: [...]}``, each entry a mapping
with ``name``, ``type``, ``action`` and the keys of its type. Everything a policy needs
is checked here, at load: patterns compile, kinds exist, plugin files load and follow
the ABI, custom classes import; a problem names its key path."""

import os
import re
from dataclasses import dataclass
from dataclasses import field

import regex

from aegisflow.policy.engine import ACTIONS
from aegisflow.policy.pii import KINDS

TYPES = (
    'keyword',
    'regex',
    'pii',
    'injection',
    'wasm',
    'custom',
    'moderation',
    'guard_model',
)
GUARD_TYPES = ('moderation', 'guard_model')
_GUARD_COMMON = ('run', 'timeout_ms', 'on_error', 'cache_ttl_s', 'window_chars')
# when a guard runs, per phase (the first is the default)
RUNS = {'input': ('parallel', 'before'), 'output': ('after', 'stream_window')}
LLAMA_GUARD_CATEGORIES = tuple(f'S{i}' for i in range(1, 15))
TEMPLATES = ('llama_guard_3', 'judge', 'custom')
_COMMON = ('name', 'type', 'action', 'mode', 'restore', 'fields')
_TYPE_KEYS = {
    'keyword': ('keywords',),
    'regex': ('patterns', 'timeout_ms', 'max_match'),
    'pii': ('kinds',),
    'injection': ('threshold', 'model'),
    'wasm': ('path', 'timeout_ms', 'on_error', 'config', 'fuel', 'memory_limit_mb'),
    'custom': ('class', 'config'),
    'moderation': ('provider', 'model', 'categories') + _GUARD_COMMON,
    'guard_model': (
        'model',
        'template',
        'categories',
        'prompt',
        'unsafe_pattern',
        'max_tokens',
    )
    + _GUARD_COMMON,
}
_NAME = re.compile(r'[A-Za-z0-9_.\-]{1,64}\Z')


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    name: str
    phase: str  # input | output
    type: str
    action: str
    dry_run: bool = False
    restore: bool = False
    fields: frozenset | None = None  # the kinds of request field read (None: all)
    options: dict = field(default_factory=dict, hash=False, compare=False)


def read_policies(builder, node):
    """[PolicyConfig] from the ``policies`` node (absent: none)."""
    if not node.mapping(('input', 'output'), optional=True):
        return ()
    out, names = [], {}
    for phase in ('input', 'output'):
        for item in node.get(phase).list([], what='a list of policies'):
            policy = _policy(builder, item, phase)
            if policy is None:
                continue
            if policy.name in names:
                item.get('name').fail(
                    f'a policy name not already used by {names[policy.name]}'
                )
                continue
            names[policy.name] = item.path
            out.append(policy)
    return tuple(out)


def _policy(builder, item, phase):
    if not item.mapping(_COMMON + sum(_TYPE_KEYS.values(), ())):
        return None
    name = item.get('name').str(
        check=_NAME.match, expected='a name of letters, digits, _ . - (max 64)'
    )
    ptype = item.get('type').str(choices=TYPES)
    action = item.get('action').str(choices=ACTIONS)
    mode = item.get('mode').str('enforce', choices=('enforce', 'dry_run'))
    restore = item.get('restore').bool(False)
    if ptype is None:
        return None
    for key, _ in item.items():
        if key not in _COMMON and key not in _TYPE_KEYS[ptype]:
            item.get(key).fail(
                f'no {key!r} for a {ptype} policy '
                f'(its keys: {", ".join(_TYPE_KEYS[ptype])})',
                found='an extra key',
            )
    if restore and action != 'redact':
        item.get('restore').fail(
            'restore only with action redact', found=f'action {action}'
        )
    if phase == 'output' and ptype == 'injection' and action == 'redact':
        item.get('action').fail(
            'block, warn or log for an injection policy on output', found='redact'
        )
    if ptype in GUARD_TYPES and action == 'redact':
        item.get('action').fail(
            f'block, warn or log for a {ptype} policy (a guard judges a text '
            'whole: it names no span to redact)',
            found='redact',
        )
    fields = _fields(item.get('fields'), phase, ptype)
    options = _OPTIONS[ptype](builder, item)
    if options is not None and ptype in GUARD_TYPES:
        options = _guard_common(item, phase, options)
    if options is None or name is None or action is None:
        return None
    return PolicyConfig(
        name=name,
        phase=phase,
        type=ptype,
        action=action,
        dry_run=mode == 'dry_run',
        restore=restore,
        fields=fields,
        options=options,
    )


def _fields(node, phase, ptype):
    """The kinds of request field an input policy reads (absent: all of them)."""
    if node.missing:
        return None
    from aegisflow.policy.walk import FIELD_KINDS

    if phase != 'input':
        node.fail('fields only on an input policy (an answer is one kind of text)')
        return None
    kinds = [
        k.str(choices=FIELD_KINDS)
        for k in node.list(min_items=1, what='a list of field kinds')
    ]
    return frozenset(k for k in kinds if k is not None) or None


def _keyword(builder, item):
    words = []
    for k in item.get('keywords').list(
        min_items=1, what='a list of keywords or phrases'
    ):
        w = k.str(expected='a keyword or phrase')
        if w is not None:
            words.append(w)
    return {'keywords': tuple(words)} if words else None


def _regex(builder, item):
    patterns = []
    for p in item.get('patterns').list(
        min_items=1, what='a list of regular expressions'
    ):
        text = p.str(expected='a regular expression')
        if text is None:
            continue
        try:
            regex.compile(text, regex.V0)
        except regex.error as exc:
            p.fail('a valid regular expression', found=f'{text[:60]!r} ({exc})')
            continue
        patterns.append(text)
    timeout = item.get('timeout_ms').int(20, min=1, max=1000)
    max_match = item.get('max_match').int(256, min=1, max=65536)
    return (
        {'patterns': tuple(patterns), 'timeout_ms': timeout, 'max_match': max_match}
        if patterns
        else None
    )


def _pii(builder, item):
    kinds = []
    node = item.get('kinds')
    if node.missing:
        from aegisflow.policy.pii import DEFAULT_KINDS

        return {'kinds': DEFAULT_KINDS}
    for k in node.list(min_items=1, what='a list of PII kinds'):
        kind = k.str(choices=KINDS)
        if kind is not None:
            kinds.append(kind)
    return {'kinds': tuple(kinds)} if kinds else None


def _injection(builder, item):
    """`threshold`; `model`: the learned model, ``builtin`` (the shipped one),
    ``off`` (the rules alone) or the path of a weights file written by ``make
    train-injection``, read at startup."""
    from aegisflow.policy.injection_model import load

    options = {'threshold': item.get('threshold').num(0.5, min=0.05, max=1.0)}
    node = item.get('model')
    expected = "'builtin', 'off' or the path of a weights file (make train-injection)"
    model = node.str('builtin', expected=expected)
    if model is None or model in ('builtin', 'off'):
        options['model'] = model or 'builtin'
        return options
    path = os.path.join(builder.base_dir, model)
    try:
        load(path)
    except (OSError, ValueError) as exc:
        node.fail('a weights file written by make train-injection', found=str(exc))
        return None
    options['model'] = path
    return options


def _wasm(builder, item):
    from aegisflow.policy.wasm import PluginError
    from aegisflow.policy.wasm import read_plugin

    path_node = item.get('path')
    rel = path_node.str(expected='the path of a .wasm or .wat module')
    options = {
        'timeout_ms': item.get('timeout_ms').int(50, min=1, max=10_000),
        'on_error': item.get('on_error').str('block', choices=('block', 'allow')),
        'fuel': item.get('fuel').int(20_000_000, min=10_000, max=10**10),
        'memory_limit_mb': item.get('memory_limit_mb').int(16, min=1, max=1024),
        'config': item.get('config').value if not item.get('config').missing else {},
    }
    if rel is None:
        return None
    path = os.path.join(builder.base_dir, rel)
    try:
        options['module'], options['digest'] = read_plugin(path)
    except PluginError as exc:
        path_node.fail(
            'a WebAssembly module that follows the gw-plugin v1 ABI', found=str(exc)
        )
        return None
    options['path'] = path  # NOTE: for messages only; workers use the bytes
    return options


def _custom(builder, item):
    from aegisflow.policy.filters import load_class

    node = item.get('class')
    path = node.str(expected='a dotted path package.module.Class')
    if path is None:
        return None
    try:
        load_class(path)
    except ValueError as exc:
        node.fail(str(exc), found=repr(path))
        return None
    config = item.get('config')
    return {'class': path, 'config': config.value if not config.missing else {}}


def _guard_common(item, phase, options):
    """When and how long a guard runs, what a failure does, the verdict cache."""
    runs = RUNS[phase]
    run = item.get('run').str(
        runs[0], choices=runs, expected=f'{" or ".join(runs)} for an {phase} guard'
    )
    options.update(
        run=run,
        timeout_ms=item.get('timeout_ms').int(2000, min=1, max=120_000),
        on_error=item.get('on_error').str('block', choices=('block', 'allow')),
        cache_ttl_s=item.get('cache_ttl_s').int(300, min=0, max=30 * 86400),
        window_chars=item.get('window_chars').int(1000, min=50, max=100_000),
    )
    return options if run is not None else None


def _thresholds(node):
    """{category: threshold} of a moderation policy (absent: None, the
    endpoint's own ``flagged``)."""
    if node.missing:
        return None
    if not isinstance(node.value, dict) or not node.value:
        node.fail('a mapping of category names to thresholds from 0 to 1')
        return None
    out = {}
    for name, _ in node.items():
        value = node.get(name).num(min=0, max=1)
        if not isinstance(name, str) or not name:
            node.fail('category names as keys')
            return None
        if value is not None:
            out[name] = value
    return out


def _guard_provider(builder, node):
    """The name of a declared, enabled provider that serves /v1/moderations."""
    name = node.str(
        expected='the name of a provider of type openai or openai_compatible'
    )
    if name is None:
        return None
    found = next((p for p in builder.built_providers if p.name == name), None)
    if found is None:
        why = (
            'switched off: its key is not set'
            if name in {n for n, _ in builder.disabled}
            else 'no such provider'
        )
        node.fail(
            'the name of an enabled provider of type openai or openai_compatible',
            found=f'{name!r} ({why})',
        )
        return None
    if found.type not in ('openai', 'openai_compatible'):
        node.fail(
            'a provider of type openai or openai_compatible (they serve '
            '/v1/moderations)',
            found=f'{name!r} of type {found.type}',
        )
        return None
    return name


def _moderation(builder, item):
    provider = _guard_provider(builder, item.get('provider'))
    model = item.get('model').str('omni-moderation-latest', expected='a model name')
    thresholds = _thresholds(item.get('categories'))
    if provider is None or model is None:
        return None
    return {
        'provider': provider,
        'model': model,
        'thresholds': thresholds,
        'categories': tuple(thresholds) if thresholds else (),
    }


def _guard_model(builder, item):
    from aegisflow.config.routes import servable

    model_node = item.get('model')
    model = model_node.str(expected='a model name the routes or aliases serve')
    if model is not None and not servable(
        model, builder.built_routes, builder.built_providers, builder.built_aliases
    ):
        model_node.fail(
            'a model name the routes or aliases serve', found=f'{model!r} (none does)'
        )
        model = None
    template = item.get('template').str('llama_guard_3', choices=TEMPLATES)
    options = {
        'model': model,
        'template': template,
        'max_tokens': item.get('max_tokens').int(64, min=1, max=4096),
    }
    node = item.get('categories')
    categories = ()
    if not node.missing:
        names = [c.str(expected='a category name') for c in node.list(min_items=1)]
        categories = tuple(n for n in names if n is not None)
        if template == 'llama_guard_3':
            for c, name in zip(node.list(), names, strict=False):
                if name is not None and name not in LLAMA_GUARD_CATEGORIES:
                    c.fail('a Llama Guard 3 category code, S1 to S14', found=repr(name))
    elif template == 'llama_guard_3':
        categories = LLAMA_GUARD_CATEGORIES
    options['categories'] = categories
    prompt, pattern = item.get('prompt'), item.get('unsafe_pattern')
    if template == 'custom':
        text = prompt.str(expected='a prompt template with {text} in it')
        if text is not None and '{text}' not in text:
            prompt.fail('a prompt template with {text} in it', found='no {text}')
            text = None
        expr = pattern.str(expected='a regular expression; a match means unsafe')
        if expr is not None:
            try:
                re.compile(expr)
            except re.error as exc:
                pattern.fail(
                    'a valid regular expression', found=f'{expr[:60]!r} ({exc})'
                )
                expr = None
        if text is None or expr is None:
            return None
        options.update(prompt=text, unsafe_pattern=expr)
    else:
        for node in (prompt, pattern):
            if not node.missing:
                node.fail('only with template custom', found=f'template {template}')
    return options if model is not None and template is not None else None


_OPTIONS = {
    'keyword': _keyword,
    'regex': _regex,
    'pii': _pii,
    'injection': _injection,
    'wasm': _wasm,
    'custom': _custom,
    'moderation': _moderation,
    'guard_model': _guard_model,
}
