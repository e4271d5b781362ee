"""The response cache's parts: the local store (bounds, CLOCK eviction, TTL,
deletion), tickets (namespaces, overrides, client control, determinism), and the
chat answer's stream form both ways."""

import hashlib
import time
from types import SimpleNamespace

import pytest

from aegisflow.cache import ResponseCache
from aegisflow.cache import parse_control
from aegisflow.cache.answer import assemble
from aegisflow.cache.answer import chunks
from aegisflow.cache.answer import placeholders_of
from aegisflow.cache.answer import restored
from aegisflow.cache.local import LocalStore
from aegisflow.cache.local import read_stats
from aegisflow.config import parse_config
from aegisflow.config.cache import CacheOverride
from aegisflow.policy.engine import Redactor
from aegisflow.providers import build_providers
from aegisflow.routing.router import Router
from tests.support.gateway import wait_until


def key(i):
    return hashlib.sha256(str(i).encode()).digest()


@pytest.fixture
def store(tmp_path):
    s = LocalStore(str(tmp_path / 'store'), 1 << 20)
    yield s
    s.close()


def test_entries_are_bounded_and_the_oldest_unread_go_first(store, tmp_path):
    for i in range(100):
        assert store.put(key(i), b'x' * 20000, 60)
    stats = store.stats()
    assert stats['bytes'] <= 1 << 20
    assert stats['entries'] + stats['evictions'] == 100
    assert store.get(key(0)) is None  # the oldest went
    assert store.get(key(99)) is not None
    assert read_stats(str(tmp_path / 'store')) == stats


def test_an_entry_read_since_it_was_placed_gets_a_second_chance(store):
    n = (1 << 20) // 20100
    for i in range(n):
        store.put(key(i), b'x' * 20000, 60)
    assert store.get(key(0)) is not None  # read: its reference byte is set
    store.put(key('new'), b'y' * 20000, 60)  # evicts one
    assert store.get(key(0)) is not None
    assert store.get(key(1)) is None  # the oldest unread went instead


def test_expired_entries_are_misses(store):
    stored_at = time.time()
    store.put(key('short'), b'v', 0.2)
    assert store.get(key('short'))[1] == b'v'
    wait_until(
        lambda: store.get(key('short')) is None, timeout=5, what='the entry to expire'
    )
    assert time.time() - stored_at >= 0.2


def test_an_entry_larger_than_the_store_is_refused(store):
    assert store.put(key('huge'), b'x' * (2 << 20), 60) is False
    assert store.stats()['entries'] == 0


def test_a_replaced_entry_is_counted_once(store):
    store.put(key('a'), b'1' * 100, 60)
    store.put(key('a'), b'2' * 200, 60)
    stats = store.stats()
    assert stats['entries'] == 1
    assert store.get(key('a'))[1] == b'2' * 200


def test_delete_all_or_by_match(store):
    store.put(key('a'), b'keep', 60)
    store.put(key('b'), b'drop', 60)
    assert store.delete(lambda data: bytes(data) == b'drop') == 1
    assert store.get(key('a')) is not None and store.get(key('b')) is None
    assert store.delete() == 1
    assert store.stats()['entries'] == 0 and store.stats()['bytes'] == 0


CONFIG = """
providers: [{name: mock, type: mock, models: [mock, mock-fast]}]
aliases: {fast: mock-fast}
routes: [{match: "*", targets: [mock]}]
tenants:
  - {id: acme, keys: [{key: sk-1, name: one}, {key: sk-2, name: two}]}
  - {id: globex, keys: [{key: sk-3, name: one}]}
cache: {%s}
"""


class Principal:
    def __init__(self, tenant, key_name='one'):
        self.tenant_id, self.key_name = tenant, key_name
        self.tenant = SimpleNamespace(id=tenant, policies=None)


def tickets(options='', **kw):
    config = parse_config(CONFIG % options, env={})
    cache = ResponseCache.build(config)
    router = Router(config, build_providers(config))

    def ticket(body, tenant='acme', key_name='one', control=None, route=None):
        return cache.ticket(
            'chat',
            Principal(tenant, key_name),
            router.resolve(body['model']),
            route,
            None,
            body,
            control,
        )

    return cache, ticket


BODY = {'model': 'mock', 'messages': [{'role': 'user', 'content': 'hi'}]}


def test_the_key_namespace_and_ignored_fields():
    cache, ticket = tickets()
    try:
        base = ticket(BODY).key
        assert ticket(BODY, key_name='two').key == base  # namespace_by: tenant
        assert ticket(BODY, tenant='globex').key != base
        assert ticket(dict(BODY, user='u', stream=True, metadata={})).key == base
        assert ticket(dict(BODY, temperature=0.5)).key != base
        assert (
            ticket(dict(BODY, model='fast')).key
            == ticket(dict(BODY, model='mock-fast')).key
        )
    finally:
        cache.close()
    cache, ticket = tickets('namespace_by: key')
    try:
        assert ticket(BODY, key_name='two').key != ticket(BODY).key
    finally:
        cache.close()


def test_client_control_and_determinism():
    cache, ticket = tickets('only_deterministic: true')
    try:
        assert ticket(BODY).result == 'bypass'
        t = ticket(dict(BODY, temperature=0))
        assert (t.lookup, t.store, t.result) == (True, True, 'miss')
        assert ticket(dict(BODY, seed=7)).lookup
        t = ticket(dict(BODY, seed=7), control='no-cache')
        assert (t.lookup, t.store) == (False, True)
        t = ticket(dict(BODY, seed=7), control='no-store')
        assert (t.lookup, t.store, t.result) == (False, False, 'bypass')
        assert ticket(dict(BODY, seed=7), control='max-age=30').max_age == 30
        off = ticket(dict(BODY, seed=7), route=CacheOverride(enabled=False))
        assert off is None
    finally:
        cache.close()


@pytest.mark.parametrize(
    'value, expected',
    [
        (None, (False, False, None)),
        ('no-cache', (True, False, None)),
        ('No-Store, max-age=5', (False, True, 5)),
        ('max-age="60"', (False, False, 60)),
        ('private, max-age=junk', (False, False, None)),
    ],
)
def test_parse_control(value, expected):
    assert parse_control(value) == expected


COMPLETION = {
    'id': 'chatcmpl-1',
    'object': 'chat.completion',
    'created': 1,
    'model': 'm',
    'choices': [
        {
            'index': 0,
            'message': {
                'role': 'assistant',
                'content': 'word ' * 200,
                'tool_calls': [
                    {
                        'id': 'call_1',
                        'type': 'function',
                        'function': {'name': 'f', 'arguments': '{"a": 1}'},
                    }
                ],
            },
            'finish_reason': 'tool_calls',
        }
    ],
    'usage': {'prompt_tokens': 3, 'completion_tokens': 200, 'total_tokens': 203},
}


def test_a_completion_replays_as_chunks_that_add_up_to_it():
    replay = list(chunks(COMPLETION))
    assert replay[0]['choices'][0]['delta'] == {'role': 'assistant', 'content': ''}
    assert replay[-1]['usage'] == COMPLETION['usage']
    assert replay[-2]['choices'][0]['finish_reason'] == 'tool_calls'
    assert assemble(replay) == COMPLETION


def test_placeholders_go_back_for_the_store_and_come_back_per_request():
    first, second = Redactor(), Redactor()
    p1 = first.placeholder('email', 'a@x.io', True)
    p2 = second.placeholder('email', 'b@y.io', True)
    assert p1 == p2 == '[EMAIL_1]'
    answer = {'choices': [{'message': {'content': 'mail a@x.io now'}}]}
    stored = placeholders_of(answer, first)
    assert stored == {'choices': [{'message': {'content': 'mail [EMAIL_1] now'}}]}
    assert restored(stored, second)['choices'][0]['message']['content'] == (
        'mail b@y.io now'
    )
    message = {
        'content': [
            {'type': 'thinking', 'thinking': 'about a@x.io', 'signature': 's'},
            {'type': 'text', 'text': 'to a@x.io'},
        ]
    }
    kept = placeholders_of(message, first, 'message')
    assert kept['content'][0]['thinking'] == 'about a@x.io'  # signed: untouched
    assert kept['content'][1]['text'] == 'to [EMAIL_1]'


def test_directories_of_processes_that_are_gone_are_swept(tmp_path):
    import os

    from aegisflow.cache.local import new_dir

    gone = _dead_pid()
    stale = tmp_path / f'aegisflow-cache-{gone}-abc123'
    stale.mkdir()
    (stale / 'data.mdb').write_bytes(b'x')
    live = tmp_path / f'aegisflow-cache-{os.getpid()}-def456'
    live.mkdir()
    other = tmp_path / 'something-else'
    other.mkdir()
    made = new_dir(str(tmp_path))
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert os.path.basename(made).startswith(f'aegisflow-cache-{os.getpid()}-')


def _dead_pid():
    """The pid of a process that has exited and been reaped."""
    import subprocess

    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


def test_an_unreadable_local_store_is_a_miss_never_an_error(tmp_path):
    """A store directory that cannot be opened (here: a file stands in its place)
    costs the cache, never the request."""
    config = parse_config(CONFIG % f'path: {tmp_path / "store"}', env={})
    (tmp_path / 'store').write_text('not a directory')
    cache = ResponseCache.build(config)
    router = Router(config, build_providers(config))
    ticket = cache.ticket(
        'chat', Principal('acme'), router.resolve('mock'), None, None, BODY, None
    )
    assert cache.get(ticket) is None
    cache.put(ticket, {'body': {}})
    assert ticket.result == 'store-skipped'
    assert cache.errors == 2
