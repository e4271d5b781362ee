"""Hostile requests, each with the exact answer: malformed JSON of every kind, wrong
types, an upstream URL in the body, and HTTP the server refuses before the app runs
(CR/LF in a header, oversized or too many headers), all in the JSON error envelope."""

import json
import re
import socket

import pytest
import requests

from tests.conftest import ACCEPTANCE_CONFIG

H = {'Authorization': 'Bearer sk-acme-1', 'Content-Type': 'application/json'}
H_AUTH = b'Authorization: Bearer sk-acme-1\r\n'
MSG = '"messages":[{"role":"user","content":"hi"}]'


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(ACCEPTANCE_CONFIG)


def post(gw, data, path='/v1/chat/completions'):
    return requests.post(gw.url + path, data=data, headers=H, timeout=10)


@pytest.mark.parametrize(
    'body, detail',
    [
        ('{"model":"mock","messages":' + '[' * 100_000 + ']' * 100_000 + '}', 'depth'),
        (
            '{"model":"mock",'
            + MSG[:-2]
            + ',"x":'
            + '{"a":' * 5000
            + '1'
            + '}' * 5000
            + '}]}',
            'depth',
        ),
        ('{"model":"mock","temperature":NaN,' + MSG + '}', 'unexpected character'),
        ('{"model":"mock","max_tokens":Infinity,' + MSG + '}', 'unexpected character'),
        ('{"model":"mock","max_tokens":' + '9' * 5000 + ',' + MSG + '}', 'infinity'),
        ('{"model":"mock","temperature":1e999,' + MSG + '}', 'infinity'),
        (
            '{"model":"mock","messages":[{"role":"user","content":"\\ud800 x"}]}',
            'surrogate',
        ),
        (b'{"model":"mock",' + MSG.encode()[:-3] + b'\xff\xfe"}]}', 'UTF-8'),
        ('{"model":"mock",' + MSG, 'unexpected end'),
    ],
    ids=[
        'nested-arrays',
        'nested-objects',
        'nan',
        'infinity',
        'huge-integer',
        'huge-float',
        'lone-surrogate',
        'invalid-utf8',
        'truncated',
    ],
)
def test_malformed_json_is_refused_with_the_reason(gw, body, detail):
    for path, envelope in (('/v1/chat/completions', 'openai'), ('/v1/messages', 'a')):
        r = post(gw, body, path)
        assert r.status_code == 400, r.text
        data = r.json()
        err = data['error']
        if envelope == 'openai':
            assert err['code'] == 'invalid_json' and err['param'] is None
        else:
            assert data['type'] == 'error'
        assert err['type'] == 'invalid_request_error'
        assert err['message'].startswith('We could not parse the JSON body')
        assert detail.lower() in err['message'].lower()


@pytest.mark.parametrize(
    'field, value, expected',
    [
        ('messages', '"hi"', 'an array of message objects, but got a string'),
        ('model', '5', 'a string, but got an integer'),
        ('stream', '"yes"', 'a boolean, but got a string'),
        ('temperature', '"hot"', 'a number'),
        ('max_tokens', '1.5', 'an integer'),
        ('n', '[]', 'an integer'),
        ('tools', '{}', 'an array'),
        ('stop', '7', 'a string or an array'),
        ('user', '{}', 'a string'),
    ],
)
def test_wrong_types_name_the_field(gw, field, value, expected):
    base = {'model': '"mock"', 'messages': '[{"role":"user","content":"hi"}]'}
    base[field] = value
    body = '{' + ','.join(f'"{k}":{v}' for k, v in base.items()) + '}'
    r = post(gw, body)
    assert r.status_code == 400, r.text
    err = r.json()['error']
    assert err['param'] == field
    assert err['code'] in ('invalid_type', 'invalid_value')
    assert expected in err['message']


@pytest.mark.parametrize('body', ['null', '[]', '"text"', '7', ''])
def test_a_body_that_is_not_an_object(gw, body):
    r = post(gw, body)
    assert r.status_code == 400
    assert r.json()['error']['code'] == 'invalid_json'


def test_duplicate_keys_last_one_wins_for_policies_and_upstream_alike(gw):
    """JSON with a repeated key has one meaning here: the last value (as in
    Python's json and JavaScript). The gateway re-encodes the body it checked, so
    the upstream cannot read a different value than the policies and routing did."""
    r = post(gw, '{"model":"gpt-4","model":"mock",' + MSG + '}')
    assert r.status_code == 200
    assert r.json()['model'] == 'mock'
    r = post(gw, '{"model":"mock","model":"gpt-4",' + MSG + '}')
    assert r.status_code == 404
    assert r.json()['error']['code'] == 'model_not_found'


def test_an_upstream_url_in_the_body_is_never_followed(gw, upstream):
    """The provider's URL comes from the config only; fields naming another are
    passed to the provider as data at most, never used to pick where to send."""
    seen_before = len(upstream.paths)
    body = {
        'model': 'mock',
        'messages': [{'role': 'user', 'content': 'hi'}],
        'base_url': upstream.base_url,
        'api_base': upstream.base_url,
        'url': upstream.base_url,
        'endpoint': upstream.base_url,
    }
    r = requests.post(gw.url + '/v1/chat/completions', json=body, headers=H, timeout=10)
    assert r.status_code == 200
    assert r.json()['choices'][0]['message']['content'] == '[mock] You said: hi'
    assert len(upstream.paths) == seen_before  # nothing reached that server


def raw(gw, data):
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(data)
        out = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b'\r\n\r\n')
    return head.decode('latin-1'), body


@pytest.mark.parametrize(
    'request_bytes, status, code',
    [
        (
            b'GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Evil: a\rb\r\n\r\n',
            400,
            'invalid_http',
        ),
        (
            b'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-acme-1\x00'
            b'\r\n\r\n',
            400,
            'invalid_http',
        ),
        (
            b'GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: '
            + b'a' * 20000
            + b'\r\n\r\n',
            431,
            'headers_too_large',
        ),
        (
            b'GET /v1/models HTTP/1.1\r\nHost: x\r\n'
            + b''.join(b'X-H%d: 1\r\n' % i for i in range(200))
            + b'\r\n',
            431,
            'headers_too_large',
        ),
        (b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 414, 'uri_too_long'),
        (b'NOT A REQUEST\r\n\r\n', 400, 'invalid_http'),
    ],
    ids=[
        'cr-in-value',
        'nul-in-value',
        'huge-header',
        'many-headers',
        'long-uri',
        'junk',
    ],
)
def test_http_refused_before_the_app_gets_the_json_envelope(
    gw, request_bytes, status, code
):
    head, body = raw(gw, request_bytes)
    assert head.startswith(f'HTTP/1.1 {status} ')
    assert 'content-type: application/json' in head.lower()
    err = json.loads(body)['error']
    assert err['code'] == code and err['type'] == 'invalid_request_error'
    assert 'sk-acme-1' not in body.decode()


def test_a_body_longer_than_announced_is_read_as_announced(gw):
    body = b'{"model":"mock",' + MSG.encode() + b'}'
    head, out = raw(
        gw,
        b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer '
        b'sk-acme-1\r\nContent-Type: application/json\r\nConnection: close\r\n'
        b'Content-Length: 10\r\n\r\n' + body,
    )
    assert head.startswith('HTTP/1.1 400 ')
    assert json.loads(out)['error']['code'] == 'invalid_json'


def _nested(depth):
    """A chat body whose deepest value sits `depth` levels of objects and arrays
    down, counting the body itself (in a field the gateway forwards unread)."""
    inner = depth - 1  # the body object is level 1
    return (
        '{"model":"mock",' + MSG + ',"metadata_x":'
        + '{"a":[' * (inner // 2) + '{}' * (inner % 2) + ']}' * (inner // 2) + '}'
    )  # fmt: skip


@pytest.mark.parametrize('depth', [129, 254, 256, 600, 1000])
@pytest.mark.parametrize('path', ['/v1/chat/completions', '/v1/messages'])
def test_json_nested_past_the_limit_is_400_naming_it(gw, depth, path):
    body = _nested(depth)
    if path == '/v1/messages':
        body = body.replace('"model":"mock",', '"model":"mock","max_tokens":5,')
    r = post(gw, body, path)
    assert r.status_code == 400, r.text
    data = r.json()
    err = data['error']
    assert 'nested more than 128 levels' in err['message']
    if path == '/v1/chat/completions':
        assert err['code'] == 'invalid_json'
    else:
        assert data['type'] == 'error'


def test_json_nested_at_the_limit_is_served(gw):
    r = post(gw, _nested(128))
    assert r.status_code == 200, r.text
    stream = post(gw, _nested(128).replace('"model"', '"stream":true,"model"'))
    assert stream.status_code == 200 and stream.text.endswith('data: [DONE]\n\n')


def _response(sock):
    """Read one response with a Content-Length from `sock`: (head, body)."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        assert chunk, f'closed before a response head: {data!r}'
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    head = head.decode('latin-1')
    length = int(re.search(r'(?im)^content-length: *(\d+)', head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, 'closed inside a response body'
        body += chunk
    return head, body[:length]


def test_a_body_left_unread_closes_only_a_connection_that_says_so(gw):
    """A refused key is answered before its body is read. The connection then
    either says `Connection: close` and closes, or serves the next request: a
    client told nothing must never have its next request cut."""
    body = b'{"model":"mock",' + MSG.encode() + b', "pad": "' + b'x' * 60000 + b'"}'
    head = (
        b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer '
        b'sk-wrong\r\nContent-Type: application/json\r\n'
        b'Content-Length: %d\r\n\r\n' % len(body)
    )
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(head + body)
        first, out = _response(s)
        assert first.startswith('HTTP/1.1 401 ')
        assert json.loads(out)['error']['code'] == 'invalid_api_key'
        if re.search(r'(?im)^connection: *close', first):
            rest = b''
            while chunk := s.recv(65536):
                rest += chunk
            assert rest == b''  # closed, nothing more
            return
        s.sendall(b'GET /v1/models HTTP/1.1\r\nHost: x\r\n' + H_AUTH + b'\r\n')
        second, out = _response(s)
        assert second.startswith('HTTP/1.1 200 ')
        assert json.loads(out)['data']


def test_expect_100_continue_is_answered_before_the_body_is_sent(gw):
    """A client that waits for "100 Continue" before its body gets it at once,
    then its answer."""
    body = b'{"model":"mock",' + MSG.encode() + b'}'
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(
            b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n' + H_AUTH
            + b'Content-Type: application/json\r\nExpect: 100-continue\r\n'
            b'Content-Length: %d\r\n\r\n' % len(body)
        )  # fmt: skip
        interim = b''
        while b'\r\n\r\n' not in interim:
            chunk = s.recv(65536)
            assert chunk, 'closed before the interim response'
            interim += chunk
        assert interim.startswith(b'HTTP/1.1 100 Continue\r\n\r\n')
        s.sendall(body)
        head, out = _response(s)
        assert head.startswith('HTTP/1.1 200 ')
        assert json.loads(out)['choices'][0]['message']['content']


def test_a_response_without_a_body_then_the_next_on_one_connection(gw):
    with socket.create_connection(('127.0.0.1', gw.port), timeout=10) as s:
        s.sendall(b'OPTIONS /v1/models HTTP/1.1\r\nHost: x\r\n' + H_AUTH + b'\r\n')
        first, out = _response(s)
        assert re.match(r'HTTP/1\.1 (200|204) ', first) and out == b''
        s.sendall(b'GET /v1/models HTTP/1.1\r\nHost: x\r\n' + H_AUTH + b'\r\n')
        second, out = _response(s)
        assert second.startswith('HTTP/1.1 200 ')
        assert json.loads(out)['data']
