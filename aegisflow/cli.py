"""The ``aegisflow`` command: ``init``, ``serve``, ``check-config``, ``usage``,
``version``."""

import argparse
import hashlib
import os
import re
import secrets
import sys

import aegisflow
from aegisflow.config import ConfigError
from aegisflow.config import load_config
from aegisflow.config.locate import DEFAULT_CONFIG
from aegisflow.config.locate import INIT_CONFIG
from aegisflow.config.locate import config_path

_ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')


def _init(args):
    from aegisflow import shipped

    directory = args.directory
    target = os.path.join(directory, INIT_CONFIG)
    if os.path.exists(target) and not args.force:
        print(
            f'aegisflow: {target} exists; pass --force to replace it', file=sys.stderr
        )
        return 1
    if args.key_env is not None and not _ENV_NAME.match(args.key_env):
        print(
            f'aegisflow: --key-env takes a variable name, not {args.key_env!r}',
            file=sys.stderr,
        )
        return 2
    if args.key_env:
        entry = f'{{key_env: {args.key_env}, name: dev}}'
        key = None
    else:
        key = 'sk-af-' + secrets.token_urlsafe(24)
        digest = hashlib.sha256(key.encode()).hexdigest()
        entry = f'{{key_sha256: "{digest}", name: dev}}   # the key was printed once'
    text = shipped.path('starter.yaml').read_text().replace('KEY_ENTRY', entry)
    os.makedirs(directory, exist_ok=True)
    with open(target, 'w') as f:
        f.write(text)
    print(f'wrote {target}')
    if key is not None:
        print(f'development key (shown once; only its SHA-256 is in the file): {key}')
    else:
        print(f'the development key is read from ${args.key_env}')
    print(
        'run it: aegisflow serve' + ('' if directory == '.' else f' --config {target}')
    )
    return 0


def _check(args):
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f'aegisflow: {exc}', file=sys.stderr)
        return 1
    print(
        f'{args.file}: ok ({len(config.providers)} providers, {len(config.routes)} '
        f'routes, {len(config.tenants)} tenants; digest {config.digest})'
    )
    for name, reason in config.disabled:
        print(f'  provider {name} is switched off: {reason}')
    return 0


def _serve(args):
    path = config_path(args.config)
    try:
        load_config(path)
    except ConfigError as exc:
        print(f'aegisflow: {exc}', file=sys.stderr)
        return 1
    import workers

    conf = os.path.join(os.path.dirname(workers.__file__), 'gunicorn_conf.py')
    argv = [sys.executable, '-m', 'gunicorn', '-c', conf]
    if args.bind:
        argv += ['--bind', args.bind]
    if args.workers:
        argv += ['--workers', str(args.workers)]
    env = dict(os.environ, AEGISFLOW_CONFIG=os.path.abspath(path))
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def _usage(args):
    from aegisflow.errors import InvalidRequest
    from aegisflow.usage.database import ERRORS as DB_ERRORS
    from aegisflow.usage.database import Database
    from aegisflow.usage.query import UsageQuery
    from aegisflow.usage.query import run_usage
    from aegisflow.usage.query import to_csv
    from aegisflow.usage.query import to_table

    path = config_path(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f'aegisflow: {exc}', file=sys.stderr)
        return 1
    params = {
        k: v
        for k, v in (
            ('tenant', args.tenant),
            ('key', args.key),
            ('model', args.model),
            ('provider', args.provider),
            ('from', args.since),
            ('to', args.until),
            ('group_by', args.group_by),
        )
        if v
    }
    try:
        query = UsageQuery.from_params(params)
    except InvalidRequest as exc:
        print(f'aegisflow: {exc.message}', file=sys.stderr)
        return 2
    database = Database.of(config.storage)
    if not database.exists():
        print(
            f'aegisflow: no usage ledger at {database.describe()} yet', file=sys.stderr
        )
        return 1
    try:
        rows, totals = run_usage(database, query)
    except DB_ERRORS as exc:
        print(
            f'aegisflow: cannot read the ledger at {database.describe()}: '
            f'{type(exc).__name__}',
            file=sys.stderr,
        )
        return 1
    if args.format == 'csv':
        print(to_csv(rows, query.group_by), end='')
    elif args.format == 'json':
        import orjson

        print(orjson.dumps({'rows': rows, 'totals': totals}).decode())
    else:
        print(
            to_table(
                rows + [dict(dict.fromkeys(query.group_by, 'TOTAL'), **totals)]
                if query.group_by
                else [totals],
                query.group_by,
            )
        )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='aegisflow', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    init = sub.add_parser('init', help=f'write a starter {INIT_CONFIG}')
    init.add_argument('directory', nargs='?', default='.', help='default: here')
    init.add_argument('--force', action='store_true', help='replace an existing one')
    init.add_argument(
        '--key-env', help='read the development key from this variable instead'
    )
    init.set_defaults(run=_init)
    serve = sub.add_parser('serve', help='run the gateway under Gunicorn')
    serve.add_argument(
        '--config',
        help=f'config file (default $AEGISFLOW_CONFIG, {DEFAULT_CONFIG}, or '
        f'{INIT_CONFIG} here)',
    )
    serve.add_argument('--bind', help='HOST:PORT, overrides server.bind')
    serve.add_argument('--workers', type=int, help='overrides server.workers')
    serve.set_defaults(run=_serve)
    check = sub.add_parser(
        'check-config', help='validate a config file and exit 0 or 1'
    )
    check.add_argument('file')
    check.set_defaults(run=_check)
    usage = sub.add_parser('usage', help='usage from the ledger, as a table')
    usage.add_argument('--config', help='config file (for the ledger path)')
    usage.add_argument('--tenant')
    usage.add_argument('--key')
    usage.add_argument('--model')
    usage.add_argument('--provider')
    usage.add_argument(
        '--from', dest='since', help='ISO 8601 date/time or unix seconds'
    )
    usage.add_argument('--to', dest='until', help='ISO 8601 date/time or unix seconds')
    usage.add_argument(
        '--group-by', help='comma list of hour, day, tenant, key, model, provider'
    )
    usage.add_argument('--format', choices=('table', 'csv', 'json'), default='table')
    usage.set_defaults(run=_usage)
    version = sub.add_parser('version', help='print the version')
    version.set_defaults(run=lambda args: print(aegisflow.__version__) or 0)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
