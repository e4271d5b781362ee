"""Client addresses behind proxies, through real Gunicorn.

The gateway trusts 127.0.0.1 as its proxy. A client connecting from 127.0.0.2 (also
loopback) is an untrusted peer: whatever Forwarded or X-Forwarded-For it sends, its
address is 127.0.0.2. Behind the trusted proxy, each forwarded client has its own
failed-key bucket, and its address reaches the access log, the span and the admin
audit log. PROXY protocol v1 from the trusted balancer sets the address too.
"""

import http.client
import json
import socket

import pytest

from tests.support.gateway import wait_until

ADMIN = 'admin-client-addr-1'
CONFIG = """
server: {{workers: 1, failed_auth_per_minute: 3, trusted_proxies: [127.0.0.1/32]
          {extra}}}
providers: [{{name: mock, type: mock, models: [mock]}}]
routes: [{{match: "*", targets: [mock]}}]
tenants:
  - {{id: acme, keys: [{{key: sk-client-addr-1}}]}}
telemetry:
  flush_interval_ms: 50
  traces: {{exporter: otlp_http, endpoint: "{endpoint}", sample_ratio: 1.0}}
"""
BODY = json.dumps({'model': 'mock', 'messages': [{'role': 'user', 'content': 'hi'}]})


@pytest.fixture(scope='module')
def gw(gateway_factory, collector):
    text = CONFIG.format(
        extra=', admin_key_env: ADDR_ADMIN', endpoint=collector.endpoint
    )
    return gateway_factory(text, env={'ADDR_ADMIN': ADMIN})


def call(gw, key, *, source='127.0.0.1', headers=None, path='/v1/chat/completions'):
    """(status, response headers, body) from `source` (the TCP peer)."""
    conn = http.client.HTTPConnection(
        '127.0.0.1', gw.port, timeout=15, source_address=(source, 0)
    )
    try:
        conn.request(
            'POST',
            path,
            body=BODY,
            headers={
                'Authorization': f'Bearer {key}',
                'Content-Type': 'application/json',
                **(headers or {}),
            },
        )
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def access_lines(gw):
    out = []
    for line in gw.log_lines():
        if '"logger":"aegisflow.access"' in line:
            out.append(json.loads(line))
    return out


def test_clients_behind_a_trusted_proxy_have_their_own_failed_key_buckets(gw):
    a = {'X-Forwarded-For': '203.0.113.5'}
    b = {'X-Forwarded-For': '203.0.113.6'}
    assert [call(gw, 'sk-wrong', headers=a)[0] for _ in range(3)] == [401] * 3
    status, headers, body = call(gw, 'sk-wrong', headers=a)
    assert status == 429 and b'too_many_failed_attempts' in body
    assert call(gw, 'sk-client-addr-1', headers=a)[0] == 429  # blocked before auth
    # another client behind the same proxy is not locked out
    assert call(gw, 'sk-wrong', headers=b)[0] == 401
    assert call(gw, 'sk-client-addr-1', headers=b)[0] == 200


def test_a_spoofed_forwarded_header_from_an_untrusted_peer_is_ignored(gw):
    for i in range(3):
        spoof = {'X-Forwarded-For': f'198.51.100.{i}', 'Forwarded': f'for=10.0.0.{i}'}
        assert call(gw, 'sk-wrong', source='127.0.0.2', headers=spoof)[0] == 401
    # all three counted against 127.0.0.2, whatever they claimed
    status, _, body = call(
        gw,
        'sk-client-addr-1',
        source='127.0.0.2',
        headers={'X-Forwarded-For': '1.1.1.1'},
    )
    assert status == 429 and b'too_many_failed_attempts' in body


def test_forwarded_header_rightmost_untrusted_hop_reaches_log_and_span(gw, collector):
    hops = {
        # the client, a hop it made up, then what the trusted proxy appended
        'Forwarded': 'for=192.0.2.99, for="[2001:db8::7]:4711";proto=https, '
        'for=127.0.0.1'
    }
    status, headers, _ = call(gw, 'sk-client-addr-1', headers=hops)
    assert status == 200
    rid = headers['X-Request-ID']

    def line():
        found = [x for x in access_lines(gw) if x['request_id'] == rid]
        return found[0] if found else None

    entry = wait_until(line, timeout=15, what='the access log line')
    # 127.0.0.1 is trusted and passed over; 2001:db8::7 is the first untrusted hop
    assert entry['client'] == '2001:db8::7'

    def span():
        for s in collector.spans:
            if s['attributes'].get('aegisflow.request_id') == rid and s['kind'] == 2:
                return s
        return None

    assert (
        wait_until(span, timeout=15, what='the server span')['attributes'][
            'client.address'
        ]
        == '2001:db8::7'
    )


def test_admin_audit_log_records_the_forwarded_client(gw):
    admin = {'Authorization': f'Bearer {ADMIN}', 'X-Forwarded-For': '203.0.113.77'}
    conn = http.client.HTTPConnection('127.0.0.1', gw.port, timeout=15)
    conn.request(
        'POST',
        '/admin/v1/tenants/acme/keys',
        body=json.dumps({'name': 'from-proxy'}),
        headers={**admin, 'Content-Type': 'application/json'},
    )
    created = conn.getresponse()
    assert created.status == 201, created.read()
    created.read()
    conn.request('GET', '/admin/v1/audit?action=key.create', headers=admin)
    entries = json.loads(conn.getresponse().read())['entries']
    conn.close()
    assert entries[0]['detail']['source'] == '203.0.113.77'


def test_proxy_protocol_v1_from_the_trusted_balancer(gateway_factory, collector):
    text = CONFIG.format(extra=', proxy_protocol: v1', endpoint=collector.endpoint)
    gw = gateway_factory(text)
    request = (
        'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
        'Authorization: Bearer sk-client-addr-1\r\nContent-Type: application/json\r\n'
        f'Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n{BODY}'
    ).encode()

    def send(source, header):
        s = socket.create_connection(
            ('127.0.0.1', gw.port), timeout=15, source_address=(source, 0)
        )
        with s:
            s.sendall(header + request)
            out = b''
            while chunk := s.recv(65536):
                out += chunk
        return out

    answer = send(
        '127.0.0.1', f'PROXY TCP4 198.51.100.7 127.0.0.1 5555 {gw.port}\r\n'.encode()
    )
    assert answer.startswith(b'HTTP/1.1 200')
    rid = answer.split(b'x-request-id: ', 1)[1].split(b'\r\n', 1)[0].decode()
    entry = wait_until(
        lambda: next((x for x in access_lines(gw) if x['request_id'] == rid), None),
        timeout=15,
        what='the access log line',
    )
    assert entry['client'] == '198.51.100.7'
    # the same header from a peer that is not trusted is not believed
    spoofed = send(
        '127.0.0.2', f'PROXY TCP4 198.51.100.8 127.0.0.1 5555 {gw.port}\r\n'.encode()
    )
    assert not spoofed.startswith(b'HTTP/1.1 200')
    assert '198.51.100.8' not in gw.log()
