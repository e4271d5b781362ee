"""A real PostgreSQL server on a free loopback port, with a throwaway data directory.

Uses the server binaries of Debian's ``postgresql`` package (``make test`` installs it
when missing). PostgreSQL refuses to run as root: under root the server runs as the
``postgres`` user the package creates. Password authentication (SCRAM) is on, so the
DSNs the tests hand to the gateway carry a real password.
"""

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile

import psycopg

from tests.support.gateway import free_port
from tests.support.gateway import wait_until

USER = 'aegisflow'


def _binary(name):
    found = sorted(glob.glob(f'/usr/lib/postgresql/*/bin/{name}'))
    if found:
        return found[-1]  # the newest installed version
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f'PostgreSQL server binary {name!r} not found (make test installs the '
            'postgresql package)'
        )
    return path


class PostgresServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.password = 'pw-' + secrets.token_hex(8)
        self.datadir = None
        self.proc = None
        self._as = {}

    def _run_as(self):
        if os.geteuid() != 0:
            return {}
        account = pwd.getpwnam('postgres')
        return {'user': account.pw_uid, 'group': account.pw_gid, 'extra_groups': []}

    def dsn(self, dbname='postgres'):
        return f'postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{dbname}'

    def start(self, timeout=30):
        self._as = self._run_as()
        self.datadir = tempfile.mkdtemp(prefix='aegisflow-pg-')
        pwfile = os.path.join(self.datadir, 'pw')
        data = os.path.join(self.datadir, 'data')
        with open(pwfile, 'w') as f:
            f.write(self.password)
        if self._as:
            for path in (self.datadir, pwfile):
                os.chown(path, self._as['user'], self._as['group'])
        subprocess.run(
            [
                _binary('initdb'),
                '-D',
                data,
                '-U',
                USER,
                '--pwfile',
                pwfile,
                '--auth',
                'scram-sha-256',
                '-E',
                'UTF8',
                '--no-sync',
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.datadir,
            **self._as,
        )
        self.proc = subprocess.Popen(
            [
                _binary('postgres'),
                '-D',
                data,
                '-p',
                str(self.port),
                '-k',
                self.datadir,
                '-c',
                'listen_addresses=127.0.0.1',
                '-c',
                'fsync=off',
                '-c',
                'synchronous_commit=off',
                '-c',
                'full_page_writes=off',
                '-c',
                'max_connections=200',
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.datadir,
            **self._as,
        )

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError('postgres exited at start')
            try:
                psycopg.connect(self.dsn(), connect_timeout=1).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_until(up, timeout=timeout, interval=0.1, what='postgres')
        return self

    def create_database(self, name):
        """A fresh, empty database; its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}"')
            db.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self, timeout=15):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: ends sessions
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)
