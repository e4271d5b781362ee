"""A key table written by an older release gains the scope columns in place and
keeps its keys."""

import hashlib
import sqlite3

from aegisflow.usage.keystore import KeyStore


def test_an_older_key_table_is_brought_up_to_date(tmp_path):
    path = tmp_path / 'old.sqlite'
    old = sqlite3.connect(path)
    old.execute(
        'CREATE TABLE api_keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, '
        'name TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, created_ns INTEGER '
        'NOT NULL, revoked_ns INTEGER)'
    )
    digest = hashlib.sha256(b'sk-old').hexdigest()
    old.execute(
        "INSERT INTO api_keys VALUES ('key_old', 'acme', 'legacy', ?, 1, NULL)",
        (digest,),
    )
    old.commit()
    old.close()
    store = KeyStore(str(path))
    [row] = store.active()
    assert (row.id, row.name, row.scope, row.prev_digest) == (
        'key_old',
        'legacy',
        {},
        None,
    )
    assert row.digest == bytes.fromhex(digest)
    assert store.update('key_old', {'metadata': {'a': 1}}) == 'acme'
    assert store.get('key_old') == ('acme', 'legacy', {'metadata': {'a': 1}})
    key_id, _ = store.create('acme', 'new', set(), {'allowed_models': ['m']})
    assert store.listing('acme')[-1]['allowed_models'] == ['m']
    assert store.rotate(key_id)[0] == 'acme'
