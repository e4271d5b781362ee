"""What a cache store raises when it cannot answer."""


class Unavailable(Exception):
    """The cache's store did not answer (Redis down, the local store unreadable):
    the cache serves a miss and skips the store; the request goes on."""
