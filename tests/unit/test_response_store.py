"""The store of /v1/responses answers: a tenant's own only, for its time to live,
within its size cap; expired rows swept."""

import sqlite3

from aegisflow.config.model import StorageConfig
from aegisflow.usage.responses import ResponseStore


class Clock:
    def __init__(self):
        self.now = 1_000 * 10**9

    def __call__(self):
        return self.now


def _store(tmp_path, clock, **kw):
    config = StorageConfig(
        sqlite_path=str(tmp_path / 'ledger.sqlite'),
        responses_ttl_s=kw.get('ttl', 60),
        responses_max_bytes=kw.get('cap', 1024),
    )
    return ResponseStore(config, clock=clock)


def test_a_row_is_its_tenants_only_and_lives_its_ttl(tmp_path):
    clock = Clock()
    store = _store(tmp_path, clock)
    assert store.save('resp_1', 'acme', body='{"id": "resp_1"}', history='[]')
    found = store.find('resp_1', 'acme')
    assert (found.body, found.history, found.held_upstream) == (
        '{"id": "resp_1"}',
        '[]',
        False,
    )
    assert store.find('resp_1', 'globex') is None
    assert not store.delete('resp_1', 'globex')
    clock.now += 59 * 10**9
    assert store.find('resp_1', 'acme') is not None
    clock.now += 2 * 10**9
    assert store.find('resp_1', 'acme') is None  # expired: as if unknown


def test_an_upstream_response_keeps_its_owner_and_provider(tmp_path):
    store = _store(tmp_path, Clock())
    store.save('resp_up', 'acme', provider='oai')
    found = store.find('resp_up', 'acme')
    assert found.held_upstream and found.provider == 'oai' and found.body is None
    assert store.delete('resp_up', 'acme')
    assert store.find('resp_up', 'acme') is None


def test_a_row_over_the_cap_is_not_stored(tmp_path):
    store = _store(tmp_path, Clock(), cap=1024)
    assert not store.save('resp_big', 'acme', body='x' * 1000, history='y' * 100)
    assert store.find('resp_big', 'acme') is None


def test_expired_rows_are_swept(tmp_path):
    clock = Clock()
    store = _store(tmp_path, clock, ttl=1)
    for i in range(255):
        store.save(f'old_{i}', 'acme', body='{}', history='[]')
    clock.now += 2 * 10**9
    store.save('new', 'acme', body='{}', history='[]')  # the 256th write sweeps
    db = sqlite3.connect(tmp_path / 'ledger.sqlite')
    assert [r for (r,) in db.execute('SELECT id FROM responses')] == ['new']


def test_a_broken_connection_is_replaced(tmp_path):
    store = _store(tmp_path, Clock())
    store.save('resp_1', 'acme', body='{}', history='[]')
    store._idle[-1].close()  # as a connection the server dropped
    assert store.find('resp_1', 'acme') is not None
