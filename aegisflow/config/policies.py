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

TYPES = ('keyword', 'regex', 'pii', 'injection', 'wasm', 'custom')
_COMMON = ('name', 'type', 'action', 'mode', 'restore')
_TYPE_KEYS = {
    'keyword': ('keywords',),
    'regex': ('patterns', 'timeout_ms', 'max_match'),
    'pii': ('kinds',),
    'injection': ('threshold',),
    'wasm': ('path', 'timeout_ms', 'on_error', 'config', 'fuel', 'memory_limit_mb'),
    'custom': ('class', 'config'),
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
    options = _OPTIONS[ptype](builder, item)
    if options is None or name is None or action is None:
        return None
    return PolicyConfig(
        name=name,
        phase=phase,
        type=ptype,
        action=action,
        dry_run=mode == 'dry_run',
        restore=restore,
        options=options,
    )


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
    return {'threshold': item.get('threshold').num(0.5, min=0.05, max=1.0)}


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


_OPTIONS = {
    'keyword': _keyword,
    'regex': _regex,
    'pii': _pii,
    'injection': _injection,
    'wasm': _wasm,
    'custom': _custom,
}
