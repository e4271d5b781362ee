"""WebAssembly policy plugins: the gw-plugin v1 ABI (docs/PLUGINS.md), on wasmtime.

A plugin is a core module (``.wasm``, or ``.wat`` text compiled at load) that exports
``memory``, ``gw_abi_version() -> i32`` (returns 1), ``gw_alloc(size) -> ptr`` and
``gw_check(phase, ptr, len) -> verdict``, optionally
``gw_init(cfg_ptr, cfg_len) -> i32``, and imports nothing but these functions of
module ``gw``: ``set_reason(ptr, len)``, ``set_redaction(ptr, len)``,
``log(level, ptr, len)`` and ``meta(ptr, cap) -> i32``.
No WASI, no clock, no randomness: a plugin is a pure function of its input.

The plugin file is read and validated once per config load, by the process that
loads the config (`read_plugin`); the config then carries the module's bytes, and
each worker compiles them once, after fork (`load_module`): no worker reads the
file, so a file changed or broken after a load changes nothing until the next
reload accepts it. Each call gets a fresh store (and so a fresh instance and
memory: nothing leaks from one request or tenant to the next) with
fuel (``fuel``), an epoch deadline (``timeout_ms``, a 5 ms ticker) and a memory cap
(``memory_limit_mb``). Every failure has a class (``plugin_timeout``, ``plugin_trap``,
``plugin_resource_limit``, ``plugin_abi_error``, ``plugin_error``) and maps to the
policy's ``on_error``: ``block`` (default, fail closed) or ``allow`` (logged and
counted).
"""

import _thread
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time

import orjson
import wasmtime

from aegisflow.policy.filters import Finding

log = logging.getLogger('aegisflow.policy.wasm')

VERDICTS = ('allow', 'log', 'warn', 'block', 'redact')
PHASES = {'input': 0, 'output': 1, 'stream': 2}
_TICK_S = 0.005
_MAX_TEXT = 1024  # bytes of reason, log line
_MAX_REDACTION = 1 << 20
_IMPORTS = {
    'set_reason': wasmtime.FuncType(
        [wasmtime.ValType.i32(), wasmtime.ValType.i32()], []
    ),
    'set_redaction': wasmtime.FuncType(
        [wasmtime.ValType.i32(), wasmtime.ValType.i32()], []
    ),
    'log': wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []),
    'meta': wasmtime.FuncType([wasmtime.ValType.i32()] * 2, [wasmtime.ValType.i32()]),
}
_EXPORTS = ('memory', 'gw_abi_version', 'gw_alloc', 'gw_check')


class PluginError(Exception):
    """A module that cannot be used (at load)."""


class PluginFault(Exception):
    """A call that failed; `error_class` says how."""

    def __init__(self, error_class, detail):
        super().__init__(f'{error_class}: {detail}')
        self.error_class = error_class


class _Runtime:
    """The process's engine and epoch ticker (started after fork, on first use)."""

    def __init__(self):
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.max_wasm_stack = 512 * 1024
        self.engine = wasmtime.Engine(config)
        self.owner = os.getpid()
        self.pid = None
        self.lock = threading.Lock()

    def ensure_ticker(self):
        if self.pid == os.getpid():
            return
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            engine = self.engine

            start_thread, sleep = _os_threading()

            def tick():
                while True:
                    sleep(_TICK_S)
                    engine.increment_epoch()

            start_thread(tick, ())


def _os_threading():
    """(start a thread, sleep) of the operating system, also under gevent's
    monkey-patching: a plugin spinning in native code never yields, so a ticker
    in a greenlet would never run and the deadline never come."""
    monkey = sys.modules.get('gevent.monkey')
    if monkey is not None and monkey.is_module_patched('threading'):
        return (
            monkey.get_original('_thread', 'start_new_thread'),
            monkey.get_original('time', 'sleep'),
        )
    return _thread.start_new_thread, time.sleep


_RUNTIME = None
_MODULES = {}  # (pid, digest) -> Module: compiled in this process only
_VALIDATED = {}  # (sha256, wat) -> wasm binary or PluginError (pure functions)
_CALL = threading.local()
_VALIDATE_TIMEOUT_S = 60


def runtime():
    """This process's engine. NOTE: never one inherited through fork: an engine
    (its compiler's thread pool and locks) is not fork-safe."""
    global _RUNTIME
    if _RUNTIME is None or _RUNTIME.owner != os.getpid():
        _RUNTIME = _Runtime()
    return _RUNTIME


def compile_module(engine, raw, *, wat):
    """(the ABI-checked `wasmtime.Module` for `raw`, its wasm binary); `raw` is
    text when `wat`. Raises PluginError naming what is wrong."""
    try:
        binary = wasmtime.wat2wasm(raw.decode()) if wat else raw
        module = wasmtime.Module(engine, binary)
    except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
        raise PluginError(
            f'not a valid module: {str(exc).splitlines()[0][:200]}'
        ) from None
    exports = {e.name for e in module.exports}
    missing = [e for e in _EXPORTS if e not in exports]
    if missing:
        raise PluginError(
            f'missing export {missing[0]!r} (gw-plugin v1 needs {", ".join(_EXPORTS)})'
        )
    for imp in module.imports:
        if imp.module != 'gw' or imp.name not in _IMPORTS:
            raise PluginError(
                f'imports {imp.module}.{imp.name}; only gw.set_reason, '
                'gw.set_redaction, gw.log and gw.meta are provided'
            )
    return module, bytes(binary)


def read_plugin(path):
    """The plugin file at `path`, validated: (its wasm binary, that binary's sha256).

    Called once per config load (start, reload, ``check-config``) by the process
    that loads the config: the Gunicorn master. NOTE: the master must not compile
    (see `runtime`), so the module is compiled and checked in a fresh interpreter
    (`aegisflow.policy.wasm_validate`), which hands back the binary; workers build
    from these bytes and never read the file. Results are kept per content, so a
    reload with unchanged plugins starts no process."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as exc:
        raise PluginError(f'{exc.strerror or exc} ({path})') from None
    wat = path.endswith('.wat')
    key = (hashlib.sha256(raw).hexdigest(), wat)
    found = _VALIDATED.get(key)
    if found is None:
        found, final = _validate_elsewhere(raw, wat)
        if final:  # NOTE: a validator that could not run is asked again next time
            _VALIDATED[key] = found
    if isinstance(found, PluginError):
        raise found
    return found, hashlib.sha256(found).hexdigest()


def _validate_elsewhere(raw, wat):
    """(the wasm binary or a PluginError, whether that verdict is final)."""
    command = [sys.executable, '-m', 'aegisflow.policy.wasm_validate']
    try:
        done = subprocess.run(
            [*command, 'wat' if wat else 'wasm'],
            input=raw,
            capture_output=True,
            timeout=_VALIDATE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return PluginError(f'not validated within {_VALIDATE_TIMEOUT_S} s'), False
    except OSError as exc:
        return PluginError(f'the validator could not start ({exc.strerror})'), False
    if done.returncode == 0:
        return done.stdout, True
    text = done.stderr.decode('utf-8', 'replace').strip().splitlines()
    message = text[-1][:300] if text else f'validator exit {done.returncode}'
    return PluginError(message), done.returncode == 2


def load_module(binary, digest):
    """The compiled module for validated bytes, compiled once per process."""
    key = (os.getpid(), digest)
    found = _MODULES.get(key)
    if found is None:
        module, _ = compile_module(runtime().engine, binary, wat=False)
        found = _MODULES[key] = Module(module, digest)
    return found


def _read(caller, ptr, length, cap):
    memory = caller.get('memory')
    if not isinstance(memory, wasmtime.Memory):
        raise PluginFault('plugin_abi_error', 'no memory export')
    size = memory.data_len(caller)
    if ptr < 0 or length < 0 or length > cap or ptr + length > size:
        raise PluginFault('plugin_abi_error', 'pointer or length out of bounds')
    try:
        return bytes(memory.read(caller, ptr, ptr + length)).decode('utf-8')
    except UnicodeDecodeError:
        raise PluginFault('plugin_abi_error', 'text that is not UTF-8') from None


def _set_reason(caller, ptr, length):
    _CALL.state['reason'] = _read(caller, ptr, length, _MAX_TEXT)


def _set_redaction(caller, ptr, length):
    _CALL.state['redaction'] = _read(caller, ptr, length, _MAX_REDACTION)


def _log(caller, level, ptr, length):
    state = _CALL.state
    if state['logs'] < 4:  # NOTE: a plugin cannot flood the log
        state['logs'] += 1
        log.info(
            'plugin log',
            extra={
                'plugin': state['name'],
                'level': level,
                'text': _read(caller, ptr, length, _MAX_TEXT),
            },
        )


def _meta(caller, ptr, cap):
    data = _CALL.state['meta']
    memory = caller.get('memory')
    size = memory.data_len(caller)
    n = min(len(data), cap)
    if ptr < 0 or cap < 0 or ptr + n > size:
        raise PluginFault('plugin_abi_error', 'meta buffer out of bounds')
    memory.write(caller, data[:n], ptr)
    return len(data)


class Module:
    """A compiled plugin module, shared by every policy that loads the same file."""

    def __init__(self, module, digest):
        self.module = module
        self.digest = digest
        engine = runtime().engine
        linker = wasmtime.Linker(engine)
        for name, func in (
            ('set_reason', _set_reason),
            ('set_redaction', _set_redaction),
            ('log', _log),
            ('meta', _meta),
        ):
            linker.define_func('gw', name, _IMPORTS[name], func, access_caller=True)
        self.linker = linker

    def call(
        self, name, phase, text, meta, config_json, *, fuel, timeout_ms, memory_bytes
    ):
        """(verdict name, reason, redaction) or raises PluginFault."""
        rt = runtime()
        rt.ensure_ticker()
        store = wasmtime.Store(rt.engine)
        store.set_fuel(fuel)
        store.set_epoch_deadline(-(-timeout_ms // int(_TICK_S * 1000)) + 1)
        store.set_limits(memory_size=memory_bytes, instances=1, tables=1, memories=1)
        _CALL.state = {
            'reason': None,
            'redaction': None,
            'logs': 0,
            'name': name,
            'meta': meta,
        }
        try:
            return self._run(store, phase, text, config_json)
        except PluginFault:
            raise
        except wasmtime.Trap as trap:
            code = trap.trap_code
            if code in (wasmtime.TrapCode.OUT_OF_FUEL, wasmtime.TrapCode.INTERRUPT):
                raise PluginFault('plugin_timeout', str(code)) from None
            raise PluginFault('plugin_trap', str(code)) from None
        except wasmtime.WasmtimeError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, PluginFault):
                raise cause from None
            text_ = str(exc)
            if 'memory' in text_ and 'limit' in text_:
                raise PluginFault(
                    'plugin_resource_limit', text_.splitlines()[0][:200]
                ) from None
            if 'fuel' in text_ or 'epoch' in text_ or 'interrupt' in text_:
                raise PluginFault(
                    'plugin_timeout', text_.splitlines()[0][:200]
                ) from None
            raise PluginFault('plugin_trap', text_.splitlines()[0][:200]) from None
        finally:
            _CALL.state = None

    def _run(self, store, phase, text, config_json):
        instance = self.linker.instantiate(store, self.module)
        exports = instance.exports(store)
        if exports['gw_abi_version'](store) != 1:
            raise PluginFault('plugin_abi_error', 'gw_abi_version is not 1')
        memory = exports['memory']
        init = exports.get('gw_init') if hasattr(exports, 'get') else None
        if init is not None and config_json:
            ptr = self._write(store, exports, memory, config_json)
            if init(store, ptr, len(config_json)) != 0:
                raise PluginFault('plugin_error', 'gw_init refused its config')
        data = text.encode('utf-8', 'surrogatepass')
        ptr = self._write(store, exports, memory, data)
        verdict = exports['gw_check'](store, phase, ptr, len(data))
        state = _CALL.state
        if verdict < 0:
            raise PluginFault('plugin_error', f'plugin returned {verdict}')
        if verdict >= len(VERDICTS):
            raise PluginFault('plugin_abi_error', f'unknown verdict {verdict}')
        name = VERDICTS[verdict]
        if name == 'redact' and state['redaction'] is None:
            raise PluginFault('plugin_abi_error', 'REDACT without set_redaction')
        return name, state['reason'], state['redaction']

    @staticmethod
    def _write(store, exports, memory, data):
        ptr = exports['gw_alloc'](store, len(data))
        if (
            not isinstance(ptr, int)
            or ptr <= 0
            or ptr + len(data) > memory.data_len(store)
        ):
            raise PluginFault('plugin_abi_error', 'gw_alloc returned a bad pointer')
        if data:
            memory.write(store, data, ptr)
        return ptr


class WasmFilter:
    """A policy filter that asks a plugin about each text.

    The plugin's verdict is capped by the policy's `action` (a plugin configured with
    ``action: warn`` never blocks). Findings cover the whole text; a REDACT verdict
    carries the plugin's replacement text."""

    max_match = 1024  # the stream window a plugin judges at a time

    def __init__(self, name, options, *, phase, cap):
        self.name = name
        self.module = load_module(options['module'], options['digest'])
        self.config_json = orjson.dumps(options.get('config') or {})
        self.on_error = options.get('on_error', 'block')
        self.fuel = options.get('fuel', 20_000_000)
        self.timeout_ms = options.get('timeout_ms', 50)
        self.memory = options.get('memory_limit_mb', 16) << 20
        self.phase = PHASES[phase]
        self.cap = cap
        self.errors = 0

    def scan(self, text):
        meta = orjson.dumps({'phase': self.phase, 'length': len(text.original)})
        try:
            verdict, reason, redaction = self.module.call(
                self.name,
                self.phase,
                text.original,
                meta,
                self.config_json,
                fuel=self.fuel,
                timeout_ms=self.timeout_ms,
                memory_bytes=self.memory,
            )
        except PluginFault as fault:
            self.errors += 1
            log.warning(
                'policy plugin failed',
                extra={
                    'plugin': self.name,
                    'error_class': fault.error_class,
                    'module_sha256': self.module.digest[:16],
                },
            )
            if self.on_error == 'allow':
                return []
            return [Finding(fault.error_class, 0, len(text.text), 'block')]
        if verdict == 'allow':
            return []
        severity = ('log', 'warn', 'redact', 'block')
        if severity.index(verdict) > severity.index(self.cap):
            verdict = self.cap
        # NOTE: a block capped to redact has no replacement: a placeholder is used
        return [Finding(_kind(reason), 0, len(text.text), verdict, redaction)]


def _kind(reason):
    """A short kind from the plugin's reason (letters, digits, _ only; 40 max)."""
    if not reason:
        return 'plugin'
    cleaned = ''.join(c if c.isalnum() else '_' for c in reason.lower())[:40].strip('_')
    return cleaned or 'plugin'
