"""The pipeline owns the end of a streamed request, however the stream ends: read
to the end, closed part-way, or closed before its first byte was read (a client
gone before the server wrote anything) - in-process, on the WSGI protocol itself."""

import json

import falcon.testing

from aegisflow.config import parse_config
from aegisflow.gateway import Gateway
from aegisflow.web.app import create_app

CONFIG = """
providers: [{name: mock, type: mock, models: [mock], stream_chunk_words: 1}]
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: one
    keys: [{key: sk-pipeline-1}]
    rate_limit: {max_parallel: 1}
"""


def start(app):
    """(status, the WSGI body iterable) of a streamed chat request."""
    env = falcon.testing.create_environ(
        path='/v1/chat/completions',
        method='POST',
        headers={
            'Authorization': 'Bearer sk-pipeline-1',
            'Content-Type': 'application/json',
        },
        body=json.dumps(
            {
                'model': 'mock',
                'stream': True,
                'messages': [{'role': 'user', 'content': 'one two three'}],
            }
        ),
    )
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen['status'] = status

    body = app(env, start_response)
    return seen['status'], body


def make():
    config = parse_config(CONFIG, env={})
    gw = Gateway(config)
    return create_app(config, gateway=gw), gw


def metric(gw, name):
    text = gw.telemetry.metrics().decode()
    return sum(
        float(line.rsplit(' ', 1)[1])
        for line in text.splitlines()
        if line.startswith((name + '{', name + ' '))
    )


def test_stream_read_to_the_end_is_finished_once():
    app, gw = make()
    status, body = start(app)
    assert status.startswith('200')
    data = b''.join(body)
    body.close()
    assert data.endswith(b'data: [DONE]\n\n')
    assert metric(gw, 'aegisflow_requests_total') == 1
    assert metric(gw, 'aegisflow_client_aborts_total') == 0


def test_stream_closed_before_its_first_byte_gives_its_slot_back():
    app, gw = make()
    status, body = start(app)
    assert status.startswith('200')
    body.close()  # the server could not write: the client had gone
    assert metric(gw, 'aegisflow_requests_total') == 1
    assert metric(gw, 'aegisflow_client_aborts_total') == 1
    # max_parallel 1: the slot came back, so the next stream is admitted
    status, body = start(app)
    assert status.startswith('200')
    body.close()


def test_stream_closed_part_way_is_an_abort_and_frees_the_slot():
    app, gw = make()
    _, body = start(app)
    it = iter(body)
    assert next(it).startswith(b'data: ')
    body.close()
    assert metric(gw, 'aegisflow_client_aborts_total') == 1
    status, body = start(app)
    assert status.startswith('200')
    body.close()
