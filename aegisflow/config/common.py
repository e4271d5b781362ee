"""What the config's sections share: names checked alike, the YAML reader that
refuses duplicate keys, unset variables."""

import re
from urllib.parse import urlsplit

import yaml

_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z')
_ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')

_HOSTNAME = re.compile(r'[A-Za-z0-9]([A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?\Z')


def _valid_url(value):
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ('http', 'https') and bool(parts.hostname)


def _fail_unset(missing):
    for env_node, var in missing:
        env_node.fail(f'environment variable {var} to be set', found='it unset')


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f'duplicate key {key!r} (line {mark.line + 1})', mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_DuplicateKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
