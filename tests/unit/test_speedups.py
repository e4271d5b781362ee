"""A worker's cheaper Gunicorn layer: the Date header formatted once a second,
the settings read once, with Gunicorn's values and properties, a whole response in
one send, the environ's base built once and the trusted-proxy answer kept."""

import email.utils
import time

import pytest
from gunicorn.config import Config
from gunicorn.http import message
from gunicorn.http import wsgi

from workers import speedups


def test_the_date_is_gunicorns_and_changes_with_the_second(monkeypatch):
    now = [1_700_000_000.25]
    monkeypatch.setattr(speedups.time, 'time', lambda: now[0])
    first = speedups.http_date()
    assert first == 'Tue, 14 Nov 2023 22:13:20 GMT'
    now[0] += 0.5
    assert speedups.http_date() is first  # the same second: not formatted again
    now[0] += 0.5
    assert speedups.http_date() == 'Tue, 14 Nov 2023 22:13:21 GMT'


def test_a_given_timestamp_is_formatted_as_asked():
    stamp = time.time() - 86400 * 3
    assert speedups.http_date(stamp) == email.utils.formatdate(stamp, usegmt=True)


def test_settled_settings_are_the_configs_values():
    cfg = Config()
    cfg.set('keepalive', 7)
    cfg.set('limit_request_line', 1234)
    settled = speedups.SettledConfig(cfg)
    for name in cfg.settings:
        assert getattr(settled, name) == getattr(cfg, name), name
    assert settled.keepalive == 7 and settled.limit_request_line == 1234
    # properties are the config's own
    assert settled.is_ssl == cfg.is_ssl
    assert settled.sendfile == cfg.sendfile
    assert settled.env == cfg.env
    assert settled.settings is cfg.settings
    with pytest.raises(AttributeError):
        settled.no_such_setting  # noqa: B018
    with pytest.raises(AttributeError):
        settled.keepalive = 3


def test_install_settles_the_workers_settings_and_the_date(monkeypatch):
    from gunicorn import util

    monkeypatch.setattr(util, 'http_date', util.http_date)  # NOTE: put back after
    monkeypatch.setattr(wsgi, 'Response', wsgi.Response)
    monkeypatch.setattr(wsgi, 'base_environ', wsgi.base_environ)
    monkeypatch.setattr(message, '_ip_in_allow_list', message._ip_in_allow_list)

    class Worker:
        cfg = Config()

    worker = Worker()
    worker.cfg.set('keepalive', 9)
    speedups.install(worker)
    assert isinstance(worker.cfg, speedups.SettledConfig)
    assert worker.cfg.keepalive == 9
    assert util.http_date is speedups.http_date
    assert wsgi.Response is speedups.OneSendResponse
    first, second = wsgi.base_environ(worker.cfg), wsgi.base_environ(worker.cfg)
    assert first == second and first is not second
    assert first['wsgi.errors'] is second['wsgi.errors']  # built once


class Req:
    def __init__(self, method='POST', version=(1, 1), close=False):
        self.method, self.version, self.close = method, version, close

    def should_close(self):
        return self.close


class Sock:
    def __init__(self):
        self.sends = []

    def sendall(self, data):
        self.sends.append(bytes(data))


def _respond(cls, req, headers, writes):
    sock = Sock()
    resp = cls(req, sock, Config())
    resp.start_response('200 OK', headers)
    for data in writes:
        resp.write(data)
    resp.close()
    return sock.sends


JSON = [('Content-Type', 'application/json'), ('Content-Length', '11')]


def _cases():
    sized = [('Content-Type', 'text/plain'), ('Content-Length', '6')]
    return [
        ('whole body, one write', Req(), JSON, [b'{"a": "bc"}']),
        ('body in two writes', Req(), sized, [b'abc', b'def']),
        ('no length: chunked', Req(), [('Content-Type', 'text/plain')], [b'ab', b'c']),
        ('HEAD', Req('HEAD'), JSON, [b'{"a": "bc"}']),
        ('empty body', Req(), [('Content-Length', '0')], [b'']),
        ('no write at all', Req(), [('Content-Length', '0')], []),
        ('HTTP/1.0, closing', Req(version=(1, 0), close=True), JSON, [b'{"a": "bc"}']),
        ('longer than said', Req(), sized, [b'abcdefgh']),
    ]


@pytest.mark.parametrize(
    ('req', 'headers', 'writes'),
    [case[1:] for case in _cases()],
    ids=[case[0] for case in _cases()],
)
def test_one_send_response_writes_what_gunicorns_writes(
    monkeypatch, req, headers, writes
):
    monkeypatch.setattr(wsgi.util, 'http_date', lambda: 'Tue, 14 Nov 2023 22:13:20 GMT')
    theirs = _respond(wsgi.Response, req, headers, writes)
    ours = _respond(speedups.OneSendResponse, req, headers, writes)
    assert b''.join(ours) == b''.join(theirs)


def test_a_whole_body_goes_with_its_head_in_one_send():
    sends = _respond(speedups.OneSendResponse, Req(), JSON, [b'{"a": "bc"}'])
    assert len(sends) == 1
    assert sends[0].startswith(b'HTTP/1.1 200 OK\r\n')
    assert sends[0].endswith(b'\r\n\r\n{"a": "bc"}')
    # a body in pieces (a stream) gets its head at once, before the first piece
    sized = [('Content-Length', '6')]
    sends = _respond(speedups.OneSendResponse, Req(), sized, [b'abc', b'def'])
    assert [s.endswith(b'\r\n\r\n') for s in sends] == [True, False, False]
    # past ONE_SEND_MAX the body is not copied behind the head
    big = b'x' * (speedups.ONE_SEND_MAX + 1)
    sends = _respond(
        speedups.OneSendResponse, Req(), [('Content-Length', str(len(big)))], [big]
    )
    assert len(sends) == 2 and sends[1] == big


def test_the_trusted_proxy_answer_is_gunicorns_and_kept_per_address(monkeypatch):
    calls = []

    def match(ip_str, allow_list, networks):
        calls.append(ip_str)
        return message._ip_in_allow_list(ip_str, allow_list, networks)

    matches = speedups.allow_list_match(match)
    cfg = Config()
    cfg.set('forwarded_allow_ips', '10.0.0.0/8,127.0.0.1')
    allowed, networks = cfg.forwarded_allow_ips, cfg.forwarded_allow_networks()
    for ip, trusted in [('10.1.2.3', True), ('127.0.0.1', True), ('192.0.2.7', False)]:
        assert matches(ip, allowed, networks) is trusted
        assert matches(ip, allowed, networks) is trusted  # kept: not parsed again
    assert calls == ['10.1.2.3', '127.0.0.1', '192.0.2.7']
    # another list is another answer, never the first list's
    assert matches('192.0.2.7', ['*'], []) is True
    assert matches('not an address', allowed, networks) is False
    # bounded: past PEERS_KEPT addresses it starts again
    monkeypatch.setattr(speedups, 'PEERS_KEPT', 2)
    few = speedups.allow_list_match(match)
    for ip in ('10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1'):
        assert few(ip, allowed, networks) is True
    assert calls[-4:] == ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1']
