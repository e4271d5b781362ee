"""The client's address behind trusted proxies: Forwarded and X-Forwarded-For read
from the right, only from a trusted peer."""

import ipaddress
import types

import pytest

from aegisflow.web.client import ClientAddress

TRUSTED = [ipaddress.ip_network('10.0.0.0/8'), ipaddress.ip_network('::1/128')]


def req(peer, **headers):
    names = {k.replace('_', '-').lower(): v for k, v in headers.items()}
    return types.SimpleNamespace(
        remote_addr=peer, get_header=lambda name: names.get(name.lower())
    )


@pytest.mark.parametrize(
    'peer, headers, client',
    [
        # no trusted proxies: the peer, whatever it sends
        ('10.1.1.1', {'x_forwarded_for': '1.2.3.4'}, '10.1.1.1'),
    ],
)
def test_without_trusted_proxies_the_peer_is_the_client(peer, headers, client):
    assert ClientAddress(())(req(peer, **headers)) == client


@pytest.mark.parametrize(
    'peer, headers, client',
    [
        ('192.0.2.9', {'x_forwarded_for': '1.2.3.4'}, '192.0.2.9'),  # untrusted
        ('10.0.0.5', {'x_forwarded_for': '1.2.3.4'}, '1.2.3.4'),
        # rightmost untrusted hop: the trusted proxies appended on the right
        ('10.0.0.5', {'x_forwarded_for': '6.6.6.6, 1.2.3.4, 10.9.9.9'}, '1.2.3.4'),
        # every hop trusted: the leftmost
        ('10.0.0.5', {'x_forwarded_for': '10.2.2.2, 10.3.3.3'}, '10.2.2.2'),
        # garbage stops the walk at the last hop that could be checked
        ('10.0.0.5', {'x_forwarded_for': 'evil, 10.3.3.3'}, '10.3.3.3'),
        ('10.0.0.5', {}, '10.0.0.5'),  # a trusted peer that forwards nothing
        # Forwarded wins over X-Forwarded-For; quoted, bracketed, with ports
        (
            '10.0.0.5',
            {
                'forwarded': 'for="[2001:db8::9]:4711";proto=https, for=10.1.1.1',
                'x_forwarded_for': '7.7.7.7',
            },
            '2001:db8::9',
        ),
        ('10.0.0.5', {'forwarded': 'for="198.51.100.2:8443"'}, '198.51.100.2'),
        ('10.0.0.5', {'forwarded': 'for=unknown'}, '10.0.0.5'),
        ('10.0.0.5', {'forwarded': 'for=_hidden, for=10.1.1.1'}, '10.1.1.1'),
        # an IPv4-mapped peer is the IPv4 address it maps
        ('::ffff:10.0.0.5', {'x_forwarded_for': '1.2.3.4'}, '1.2.3.4'),
        ('::1', {'x_forwarded_for': '2001:db8::1'}, '2001:db8::1'),
        ('unix-socket', {'x_forwarded_for': '1.2.3.4'}, 'unix-socket'),
    ],
)
def test_forwarded_headers_from_trusted_proxies(peer, headers, client):
    assert ClientAddress(TRUSTED)(req(peer, **headers)) == client
