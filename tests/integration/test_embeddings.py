"""POST /v1/embeddings with the official OpenAI SDK, per provider type."""

import math

import openai
import pytest
import requests

from tests.support.fake_ollama import FakeOllama
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture(scope='module')
def fakes():
    up, llama = FakeOpenAI().start(), FakeOllama().start()
    yield up, llama
    up.stop()
    llama.stop()


@pytest.fixture(scope='module')
def gw(gateway_factory, fakes):
    up, llama = fakes
    return gateway_factory(
        f'''
server: {{workers: 2}}
providers:
  - {{name: mock, type: mock, models: [mock-embed]}}
  - {{name: up, type: openai_compatible, base_url: "{up.base_url}",
     models: [text-embedding-3-small]}}
  - {{name: local, type: ollama, base_url: "{llama.base_url}", models: [nomic-embed]}}
  - {{name: claude, type: anthropic, api_key_env: ANTHROPIC_KEY_E, models: [claude-x]}}
routes: [{{match: "*", targets: [mock, up, local, claude]}}]
tenants: [{{id: t, keys: [{{key: sk-t}}]}}]
''',
        env={'ANTHROPIC_KEY_E': 'unused'},
    )


@pytest.fixture(scope='module')
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key='sk-t', max_retries=0)


def test_mock_embeddings_are_deterministic_unit_vectors(client):
    out = client.embeddings.create(
        model='mock-embed', input=['alpha', 'beta', 'alpha'], dimensions=16
    )
    vectors = [d.embedding for d in out.data]
    assert [d.index for d in out.data] == [0, 1, 2]
    assert len(vectors[0]) == 16 and vectors[0] == vectors[2] != vectors[1]
    assert math.isclose(sum(v * v for v in vectors[0]), 1.0, rel_tol=1e-4)
    assert out.usage.prompt_tokens == 3


def test_openai_compatible_and_ollama_embeddings(client, fakes):
    up, llama = fakes
    out = client.embeddings.create(model='text-embedding-3-small', input='hello')
    assert out.data[0].embedding == [0.5, -0.5, 0.0] and out.usage.prompt_tokens == 4
    out = client.embeddings.create(model='nomic-embed', input=['a', 'b'])
    assert [d.embedding for d in out.data] == [[0.1, 0.2], [0.1, 0.2]]
    assert out.usage.prompt_tokens == 5
    assert llama.requests[-1] == {'model': 'nomic-embed', 'input': ['a', 'b']}


def test_embeddings_not_offered_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(model='claude-x', input='hi')
    assert exc.value.body['code'] == 'embeddings_not_supported'
    assert exc.value.body['param'] == 'model'


@pytest.mark.parametrize(
    'body, param',
    [
        ({'model': 'mock-embed'}, 'input'),
        ({'model': 'mock-embed', 'input': []}, 'input'),
        ({'model': 'mock-embed', 'input': ['ok', 5]}, 'input[1]'),
        ({'model': 'mock-embed', 'input': 'x', 'dimensions': 0}, 'dimensions'),
        (
            {'model': 'mock-embed', 'input': 'x', 'encoding_format': 'hex'},
            'encoding_format',
        ),
        ({'input': 'x'}, 'model'),
    ],
)
def test_embeddings_validation(gw, body, param):
    r = requests.post(
        gw.base_url + '/embeddings',
        json=body,
        timeout=5,
        headers={'Authorization': 'Bearer sk-t'},
    )
    assert r.status_code == 400 and r.json()['error']['param'] == param


def test_token_id_input_goes_only_to_openai_style_providers(gw):
    r = requests.post(
        gw.base_url + '/embeddings',
        timeout=5,
        headers={'Authorization': 'Bearer sk-t'},
        json={'model': 'text-embedding-3-small', 'input': [[1, 2, 3]]},
    )
    assert r.status_code == 200 and r.headers['X-AegisFlow-Provider'] == 'up'
    r = requests.post(
        gw.base_url + '/embeddings',
        timeout=5,
        headers={'Authorization': 'Bearer sk-t'},
        json={'model': 'mock-embed', 'input': [[1, 2, 3]]},
    )
    assert r.status_code == 400 and 'token-id input' in r.json()['error']['message']
