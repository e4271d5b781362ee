"""The Redis backend of the response cache, for gateways on several hosts: the same
entries as the local store, compressed (zlib), each a key with its TTL, named
``<prefix>:cache:<tenant tag>:<model tag>:<key>`` so the admin API can delete by
tenant or model with SCAN. Redis errors raise `Unavailable`; the cache treats them
as a miss (and skips the store): an outage costs hits, never requests."""

import hashlib
import logging
import struct
import time
import zlib

import redis

from aegisflow.cache.errors import Unavailable

log = logging.getLogger('aegisflow.cache')

_STORED = struct.Struct('<d')


class RedisStore:
    backend = 'redis'

    def __init__(self, url, prefix, timeout_ms):
        timeout = timeout_ms / 1000
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.prefix = f'{prefix}:cache:'

    def verdict_name(self, key):
        """The name of a guardrail verdict (`key`: bytes, already a digest)."""
        return self.prefix + key.decode()

    def name(self, key, tenant, model):
        return f'{self.prefix}{tag(tenant)}:{tag(model)}:{key.hex()}'

    def get(self, name):
        try:
            value = self.client.get(name)
        except redis.RedisError as err:
            raise Unavailable(str(err)) from None
        if value is None:
            return None
        try:
            data = zlib.decompress(value)
        except zlib.error:
            log.warning('unreadable cache entry dropped')
            return None
        return _STORED.unpack_from(data)[0], data[_STORED.size :]

    def put(self, name, entry, ttl_s):
        value = zlib.compress(_STORED.pack(time.time()) + entry, 1)
        try:
            self.client.set(name, value, px=max(1, int(ttl_s * 1000)))
        except redis.RedisError as err:
            raise Unavailable(str(err)) from None
        return True

    def delete(self, tenant=None, model=None):
        """Delete every entry, or a tenant's, or a model's; how many."""
        pattern = (
            f'{self.prefix}{tag(tenant) if tenant else "*"}:'
            f'{tag(model) if model else "*"}:*'
        )
        deleted = 0
        try:
            batch = []
            for name in self.client.scan_iter(match=pattern, count=1000):
                batch.append(name)
                if len(batch) >= 500:
                    deleted += self.client.delete(*batch)
                    batch = []
            if batch:
                deleted += self.client.delete(*batch)
        except redis.RedisError as err:
            raise Unavailable(str(err)) from None
        return deleted

    def stats(self):
        """{'entries'} (the keys under the prefix; Redis owns memory and eviction)."""
        try:
            entries = sum(
                1 for _ in self.client.scan_iter(match=f'{self.prefix}*', count=1000)
            )
        except redis.RedisError as err:
            raise Unavailable(str(err)) from None
        return {'entries': entries}

    def close(self):
        self.client.close()


def tag(name):
    """A short, glob-free tag of a tenant or model name for key names."""
    return hashlib.sha256(name.encode()).hexdigest()[:12]
