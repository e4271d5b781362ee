"""The ``aegisflow`` command: ``serve``, ``check-config``, ``version``."""

import argparse
import os
import sys

import aegisflow
from aegisflow.config import ConfigError
from aegisflow.config import load_config

DEFAULT_CONFIG = 'conf/aegisflow.yaml'


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
    path = args.config or os.environ.get('AEGISFLOW_CONFIG') or DEFAULT_CONFIG
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

    path = args.config or os.environ.get('AEGISFLOW_CONFIG') or DEFAULT_CONFIG
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
    serve = sub.add_parser('serve', help='run the gateway under Gunicorn')
    serve.add_argument(
        '--config', help=f'config file (default $AEGISFLOW_CONFIG or {DEFAULT_CONFIG})'
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
