"""WASM policy plugins (gw-plugin v1): the example plugins, built from their WAT
sources, and every failure class mapped to ``on_error``."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from aegisflow.policy.engine import Policy
from aegisflow.policy.engine import Redactor
from aegisflow.policy.engine import check_request
from aegisflow.policy.filters import PiiFilter
from aegisflow.policy.normalize import Folded
from aegisflow.policy.wasm import PluginError
from aegisflow.policy.wasm import WasmFilter
from aegisflow.policy.wasm import read_plugin

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, '..', 'plugins')
EXAMPLES = os.path.join(HERE, '..', '..', 'conf', 'plugins')


def plugin(name, *, where=FIXTURES, cap='block', **options):
    path = os.path.join(where, name + '.wat')
    module, digest = read_plugin(path)
    return WasmFilter(
        name,
        {'path': path, 'module': module, 'digest': digest, **options},
        phase='input',
        cap=cap,
    )


def test_example_plugin_blocks_with_its_reason():
    flt = plugin('deny_marker', where=EXAMPLES)
    assert flt.scan(Folded('all fine here')) == []
    [finding] = flt.scan(Folded('please BLOCKME now'))
    assert (finding.kind, finding.action) == ('marker', 'block')


def test_example_plugin_redacts_with_its_replacement():
    body = {'model': 'm', 'messages': [{'role': 'user', 'content': 'pin 1234, ok'}]}
    policy = Policy(
        'digits', 'input', 'redact', plugin('redact_digits', where=EXAMPLES)
    )
    decision = check_request(body, [policy], Redactor())
    assert decision.blocked is None
    assert body['messages'][0]['content'] == 'pin ####, ok'
    assert decision.hits[0].kind == 'digits'


def test_a_plugin_verdict_combines_with_built_in_policies():
    body = {
        'model': 'm',
        'messages': [{'role': 'user', 'content': 'card 4111 1111 1111 1111'}],
    }
    warn = Policy('w', 'input', 'warn', plugin('warn_always', cap='warn'))
    block = Policy('cards', 'input', 'block', PiiFilter(['credit_card']))
    for order in ([warn, block], [block, warn]):
        decision = check_request(body, order, Redactor())
        assert decision.blocked.policy.name == 'cards'
    only_warn = check_request(body, [warn], Redactor())
    assert only_warn.blocked is None and only_warn.warnings == ['w']


def test_the_policy_action_caps_the_plugin_verdict():
    flt = plugin('deny_marker', where=EXAMPLES, cap='warn')
    [finding] = flt.scan(Folded('BLOCKME'))
    assert finding.action == 'warn'


def test_an_infinite_loop_stops_within_its_timeout():
    flt = plugin('spin', timeout_ms=40)
    t0 = time.monotonic()
    [finding] = flt.scan(Folded('x'))
    elapsed = time.monotonic() - t0
    assert finding.kind == 'plugin_timeout' and finding.action == 'block'
    assert elapsed < 1.0  # bounded by fuel and the 40 ms epoch deadline, not by luck


def test_an_infinite_loop_stops_in_a_cooperative_worker_too():
    """Under gevent's monkey-patching a ticker started as a thread would be a
    greenlet, which never runs while a plugin spins in native code: the deadline
    must still come, from an OS thread (fuel is out of reach here). In a fresh
    process, as a worker is: forked from a master that never compiled a plugin."""
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        import time
        from aegisflow.policy.normalize import Folded
        from aegisflow.policy.wasm import WasmFilter, read_plugin
        path = {os.path.join(FIXTURES, 'spin.wat')!r}
        module, digest = read_plugin(path)
        options = {{'path': path, 'module': module, 'digest': digest,
                    'timeout_ms': 40, 'fuel': 10**15}}
        flt = WasmFilter('spin', options, phase='input', cap='block')
        t0 = time.monotonic()
        [finding] = flt.scan(Folded('x'))
        print(finding.kind, time.monotonic() - t0 < 1.0)
        """
    )
    out = subprocess.run(
        [sys.executable, '-c', script],
        cwd=os.path.join(HERE, '..', '..'),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ['plugin_timeout', 'True'], out.stderr[-2000:]


def test_fuel_alone_stops_a_loop():
    flt = plugin('spin', timeout_ms=10_000, fuel=100_000)
    [finding] = flt.scan(Folded('x'))
    assert finding.kind == 'plugin_timeout'


@pytest.mark.parametrize(
    'name, error_class',
    [
        ('memory_bomb', 'plugin_trap'),  # memory.grow refused past the cap, then traps
        ('huge_minimum', 'plugin_resource_limit'),
        ('trap', 'plugin_trap'),
        ('bad_pointer', 'plugin_abi_error'),
        ('bad_verdict', 'plugin_abi_error'),
        ('redact_without_text', 'plugin_abi_error'),
        ('wrong_abi', 'plugin_abi_error'),
        ('bad_alloc', 'plugin_abi_error'),
        ('plugin_error', 'plugin_error'),
    ],
)
def test_failures_map_to_on_error(name, error_class):
    closed = plugin(name, memory_limit_mb=8)
    [finding] = closed.scan(Folded('some text'))
    assert (finding.kind, finding.action) == (error_class, 'block')
    assert closed.errors == 1
    opened = plugin(name, memory_limit_mb=8, on_error='allow')
    assert opened.scan(Folded('some text')) == []
    assert opened.errors == 1


def test_a_memory_bomb_never_gets_past_its_cap():
    flt = plugin('memory_bomb', memory_limit_mb=2)
    flt.scan(Folded('x'))  # would need gigabytes; refused at 2 MiB
    assert flt.errors == 1


@pytest.mark.parametrize(
    'name, message',
    [
        ('wasi_import', 'imports wasi_snapshot_preview1.fd_write'),
    ],
)
def test_modules_outside_the_abi_are_refused_at_load(name, message):
    with pytest.raises(PluginError) as exc:
        read_plugin(os.path.join(FIXTURES, name + '.wat'))
    assert message in str(exc.value)


def test_missing_exports_and_bad_files_are_refused_at_load(tmp_path):
    empty = tmp_path / 'empty.wat'
    empty.write_text('(module (memory (export "memory") 1))')
    with pytest.raises(PluginError, match="missing export 'gw_abi_version'"):
        read_plugin(str(empty))
    junk = tmp_path / 'junk.wasm'
    junk.write_bytes(b'\0asm\x01\0\0\0garbage')
    with pytest.raises(PluginError, match='not a valid module'):
        read_plugin(str(junk))
    with pytest.raises(PluginError, match='No such file'):
        read_plugin(str(tmp_path / 'absent.wasm'))


def test_each_call_gets_a_fresh_instance():
    # the digit plugin rewrites its input buffer in place: a reused instance would
    # leak one call's text into the next
    flt = plugin('redact_digits', where=EXAMPLES)
    first = flt.scan(Folded('abc 12345'))
    second = flt.scan(Folded('xy 9'))
    assert first[0].replacement == 'abc #####'
    assert second[0].replacement == 'xy #'


def test_gw_init_receives_the_policy_config():
    assert plugin('init_config', config={}).scan(Folded('x')) == []
    [finding] = plugin('init_config', config={'strict': True}).scan(Folded('x'))
    assert (finding.kind, finding.action) == ('plugin_error', 'block')
