"""Run the real gateway under real Gunicorn on a free loopback port.

Every start has a deadline, every stop a grace period and a SIGKILL fallback for the
whole process group, so a failing test never leaves a server behind.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from aegisflow.config.model import ServerConfig
from tests.support import secrets

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout, interval=0.02, what='condition'):
    """Poll `predicate` until it returns a truthy value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout}s waiting for {what}')
        time.sleep(interval)


# the worker class every gateway of a run uses when its config names none (the
# suite runs its serving modules once more under the other class: see Makefile)
WORKER_CLASS = os.environ.get('AEGISFLOW_TEST_WORKER_CLASS')
# the class of a gateway whose config names none
SERVING_CLASS = WORKER_CLASS or ServerConfig().worker_class


def with_worker_class(config_text):
    """`config_text` with `WORKER_CLASS` as its worker class, unless it names one."""
    if not WORKER_CLASS:
        return config_text
    config = yaml.safe_load(config_text)
    if not isinstance(config, dict):
        return config_text  # NOTE: a test of an invalid config: left as it is
    server = config.get('server')
    if server is None:
        server = config['server'] = {}
    if not isinstance(server, dict) or 'worker_class' in server:
        return config_text
    server['worker_class'] = WORKER_CLASS
    return yaml.safe_dump(config, sort_keys=False)


class GatewayProcess:
    def __init__(
        self,
        config_text,
        workdir,
        *,
        env=None,
        extra_args=(),
        conf=ROOT / 'gunicorn.conf.py',
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / 'aegisflow.yaml'
        self.config_path.write_text(with_worker_class(config_text))
        self.log_path = self.workdir / 'gateway.log'
        self.env = dict(os.environ, **(env or {}))
        self.env['AEGISFLOW_CONFIG'] = str(self.config_path)
        secrets.given(config_text, env)
        self.extra_args = list(extra_args)
        self.conf = conf
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def base_url(self):
        return self.url + '/v1'

    def command(self):
        return [
            sys.executable,
            '-m',
            'gunicorn',
            '-c',
            str(self.conf),
            '--bind',
            f'127.0.0.1:{self.port}',
            *self.extra_args,
        ]

    def start(self, timeout=30):
        for _ in range(3):  # NOTE: a free port can be taken between probe and bind
            self.port = free_port()
            log = open(self.log_path, 'ab')
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            try:
                wait_until(self._ready, timeout=timeout, what='gateway /healthz')
                return self
            except _Exited:
                if 'Address already in use' not in self.log():
                    raise RuntimeError(
                        f'gateway exited at start:\n{self.log()}'
                    ) from None
        raise RuntimeError(f'gateway could not bind a port:\n{self.log()}')

    def _ready(self):
        if self.proc.poll() is not None:
            raise _Exited()
        try:
            return requests.get(self.url + '/healthz', timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self):
        return (
            self.log_path.read_text(errors='replace') if self.log_path.exists() else ''
        )

    def log_lines(self):
        """The log's complete lines: a line still being written (read before its
        newline) is left for the next read."""
        text = self.log()
        return text[: text.rfind('\n') + 1].splitlines()

    def signal(self, signum):
        self.proc.send_signal(signum)

    def worker_pids(self):
        out = subprocess.run(
            ['pgrep', '-P', str(self.proc.pid)], capture_output=True, text=True
        )
        return sorted(int(p) for p in out.stdout.split())

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                secrets.produced(f'{self.log_path}', self.log())
            return self.proc.returncode if self.proc else None
        try:
            metrics = requests.get(self.url + '/metrics', timeout=5).text
        except requests.RequestException:
            metrics = ''
        secrets.produced(f'{self.url}/metrics', metrics)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # stray workers, if any
            except ProcessLookupError:
                pass
            secrets.produced(f'{self.log_path}', self.log())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _Exited(Exception):
    pass
