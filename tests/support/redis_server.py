"""A real redis-server on a free loopback port, started and stopped by the tests."""

import shutil
import subprocess

import redis

from tests.support.gateway import free_port
from tests.support.gateway import wait_until


class RedisServer:
    def __init__(self, workdir, port=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None

    @property
    def url(self):
        return f'redis://127.0.0.1:{self.port}/0'

    def start(self, timeout=15):
        binary = shutil.which('redis-server')
        if binary is None:
            raise RuntimeError('redis-server is not installed (make test installs it)')
        self.proc = subprocess.Popen(
            [
                binary,
                '--bind',
                '127.0.0.1',
                '--port',
                str(self.port),
                '--save',
                '',
                '--appendonly',
                'no',
                '--dir',
                str(self.workdir),
                '--protected-mode',
                'yes',
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError('redis-server exited at start')
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_until(up, timeout=timeout, what='redis-server')
        return self

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def client(self):
        return redis.Redis(port=self.port, socket_timeout=2)
