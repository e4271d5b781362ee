"""Validate a policy plugin in a fresh interpreter: ``python -m
aegisflow.policy.wasm_validate wat|wasm`` with the file's bytes on stdin.

Exit 0 with the module's wasm binary on stdout, or 2 with the problem on stderr.
It runs apart from the process that loads the config because that process (the
Gunicorn master) forks workers, and a wasmtime engine is not fork-safe.
"""

import sys

from aegisflow.policy.wasm import PluginError
from aegisflow.policy.wasm import compile_module
from aegisflow.policy.wasm import runtime


def main(argv):
    raw = sys.stdin.buffer.read()
    try:
        _, binary = compile_module(runtime().engine, raw, wat=argv[1:] == ['wat'])
    except PluginError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.buffer.write(binary)
    return 0


if __name__ == '__main__':
    raise SystemExit(main(sys.argv))
