"""The ``server`` section: the listener, the workers and their deadlines."""

import ipaddress
from dataclasses import dataclass
from dataclasses import field

from aegisflow.config.common import _HOSTNAME

PROXY_PROTOCOLS = ('off', 'v1', 'v2', 'auto')
WORKER_CLASSES = ('gthread', 'gevent', 'meinheld')


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str = '127.0.0.1:8080'
    workers: int = 2
    # the class that won on the gateway's own work (bench/RESULTS.md, "Worker
    # classes"): cooperative, a greenlet per connection
    worker_class: str = 'gevent'
    threads: int = 1024  # gthread only
    # connections a worker holds open (in use and idle keep-alive): under gevent
    # the requests and streams it serves at once; under gthread threads plus
    # 1024, so that a worker whose every thread is busy still keeps its idle
    # clients' connections
    worker_connections: int = 10000
    # connections the kernel queues before a worker accepts them (capped by
    # net.core.somaxconn): a burst of new streams waits there, not refused
    backlog: int = 4096
    max_body_bytes: int = 8 * 1024 * 1024
    timeout_s: int = 120
    graceful_timeout_s: int = 30
    keepalive_s: int = 5
    # longest pause while a request body arrives before it is refused with 408
    body_timeout_s: float = 30.0
    # longest a request line and headers may take to arrive, in total (gthread)
    header_timeout_s: float = 10.0
    # the slowest pace a body may keep after body_timeout_s (gthread; 0: none)
    body_min_bytes_per_s: int = 500
    # invalid keys per minute from one source address before it is refused (0: off)
    failed_auth_per_minute: int = 30
    # peers (ip_network objects) whose Forwarded / X-Forwarded-For is believed
    trusted_proxies: tuple = ()
    # PROXY protocol from trusted_proxies: off, v1, v2 or auto
    proxy_protocol: str = 'off'
    admin_key: str | None = field(default=None, repr=False)  # from admin_key_env


_SERVER = tuple(f for f in ServerConfig.__dataclass_fields__ if f != 'admin_key') + (
    'admin_key_env',
)

# connections a cooperative (gevent) worker serves at once by default
_COOPERATIVE_CONNECTIONS = ServerConfig().worker_connections


class ServerSection:
    """How `aegisflow.config.loader` reads this section (a part of its builder:
    ``self`` is the builder, with its problems, environment and base directory)."""

    def server(self, node):
        d = ServerConfig()
        if not node.mapping(_SERVER, optional=True):
            return d  # NOTE: the default class's default connections
        worker_class = node.get('worker_class').str(
            d.worker_class, choices=WORKER_CLASSES
        )
        gthread = worker_class == 'gthread'
        threads = node.get('threads').int(d.threads, min=1, max=10000)
        trusted = self.networks(node.get('trusted_proxies'))
        proxy_protocol = node.get('proxy_protocol').str(
            d.proxy_protocol, choices=PROXY_PROTOCOLS
        )
        if proxy_protocol not in (None, 'off') and not trusted:
            node.get('proxy_protocol').fail(
                'off, or trusted_proxies naming the balancers that send it',
                found=repr(proxy_protocol),
            )
        return ServerConfig(
            bind=node.get('bind').str(
                d.bind,
                check=_valid_bind,
                expected='HOST:PORT (port 1-65535) or unix:PATH',
            ),
            workers=node.get('workers').int(d.workers, min=1, max=256),
            worker_class=worker_class,
            threads=threads,
            worker_connections=node.get('worker_connections').int(
                threads + 1024 if gthread else _COOPERATIVE_CONNECTIONS,
                min=threads + 1 if gthread else 1,
                max=1000000,
            ),
            backlog=node.get('backlog').int(d.backlog, min=1, max=65535),
            max_body_bytes=node.get('max_body_bytes').int(d.max_body_bytes, min=1024),
            timeout_s=node.get('timeout_s').int(d.timeout_s, min=1),
            graceful_timeout_s=node.get('graceful_timeout_s').int(
                d.graceful_timeout_s, min=0
            ),
            keepalive_s=node.get('keepalive_s').int(d.keepalive_s, min=0),
            body_timeout_s=node.get('body_timeout_s').num(
                d.body_timeout_s, min=0.1, max=3600
            ),
            header_timeout_s=node.get('header_timeout_s').num(
                d.header_timeout_s, min=0.5, max=3600
            ),
            body_min_bytes_per_s=node.get('body_min_bytes_per_s').int(
                d.body_min_bytes_per_s, min=0, max=1 << 30
            ),
            failed_auth_per_minute=node.get('failed_auth_per_minute').int(
                d.failed_auth_per_minute, min=0, max=1_000_000
            ),
            trusted_proxies=trusted,
            proxy_protocol=proxy_protocol or d.proxy_protocol,
            admin_key=(
                None
                if node.get('admin_key_env').missing
                else self.required_env(node.get('admin_key_env'))
            ),
        )

    @staticmethod
    def networks(node):
        """A list of IP networks in CIDR notation (a bare address is one host)."""
        out = []
        for item in node.list((), what='a list of addresses or CIDR networks'):
            text = item.str(expected='an address or a CIDR network (10.0.0.0/8)')
            if text is None:
                continue
            try:
                out.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                item.fail('an address or a CIDR network (10.0.0.0/8)')
        return tuple(out)


def _valid_bind(value):
    if value.startswith('unix:'):
        return len(value) > 5
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return False
    if host.startswith('[') and host.endswith(']'):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    return bool(_HOSTNAME.match(host))
