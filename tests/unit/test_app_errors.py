"""Error mapping of the Falcon app, in-process (no server needed)."""

import logging

import falcon.testing
import pytest

from aegisflow.config import parse_config
from aegisflow.web.app import create_app
from tests.conftest import ACCEPTANCE_CONFIG


@pytest.fixture
def client():
    app = create_app(parse_config(ACCEPTANCE_CONFIG, env={}))
    return falcon.testing.TestClient(app)


def test_unexpected_exception_is_500_without_traceback(client, monkeypatch, caplog):
    from aegisflow.providers.mock import MockProvider

    def boom(self, request, model):
        raise RuntimeError('secret internals')

    monkeypatch.setattr(MockProvider, 'complete', boom)
    with caplog.at_level(logging.ERROR, logger='aegisflow'):
        r = client.simulate_post(
            '/v1/chat/completions',
            headers={'Authorization': 'Bearer sk-acme-1', 'X-Request-ID': 'req-500'},
            json={'model': 'mock', 'messages': [{'role': 'user', 'content': 'x'}]},
        )
    assert r.status_code == 500
    err = r.json['error']
    assert err['type'] == 'api_error' and err['code'] == 'internal_error'
    assert 'req-500' in err['message']
    assert 'secret internals' not in r.text and 'Traceback' not in r.text
    record = next(rec for rec in caplog.records if rec.name == 'aegisflow.http')
    assert record.request_id == 'req-500' and record.exc_info


def test_error_after_first_chunk_ends_stream_without_done(client, monkeypatch):
    from aegisflow.errors import UpstreamFailed
    from aegisflow.providers.mock import MockProvider

    original = MockProvider._chunks

    def cut(self, *args):
        gen = original(self, *args)
        yield next(gen)
        yield next(gen)
        raise UpstreamFailed("Provider 'mock' broke the stream.")

    monkeypatch.setattr(MockProvider, '_chunks', cut)
    r = client.simulate_post(
        '/v1/chat/completions',
        headers={'Authorization': 'Bearer sk-acme-1'},
        json={
            'model': 'mock',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'x'}],
        },
    )
    assert r.status_code == 200
    events = [e for e in r.text.split('\n\n') if e]
    assert len(events) == 3
    assert events[-1].startswith('data: {"error"')
    assert '[DONE]' not in r.text


def test_failure_before_first_chunk_is_a_status(client):
    app = create_app(
        parse_config(
            ACCEPTANCE_CONFIG.replace(
                'models: [mock, mock-fast]}',
                'models: [mock, mock-fast], failure_rate: 1, failure_status: 503}',
            ),
            env={},
        )
    )
    r = falcon.testing.TestClient(app).simulate_post(
        '/v1/chat/completions',
        headers={'Authorization': 'Bearer sk-acme-1'},
        json={
            'model': 'mock',
            'stream': True,
            'messages': [{'role': 'user', 'content': 'x'}],
        },
    )
    assert r.status_code == 502
    assert r.json['error']['code'] == 'upstream_error'
    assert 'HTTP 503' in r.json['error']['message']


def test_without_an_admin_key_there_is_no_console(client):
    for path in ('/admin/', '/admin', '/admin/console.js'):
        r = client.simulate_get(path)
        assert r.status_code == 404, path
        assert 'admin_key_env' in r.json['error']['message']
        assert r.headers['X-Frame-Options'] == 'DENY'
