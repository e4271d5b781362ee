"""The client's address, behind the proxies the operator trusts.

The address of a request is its socket peer (``REMOTE_ADDR``; with
``server.proxy_protocol``, Gunicorn sets it from the PROXY header, which it reads
only from ``server.trusted_proxies``). When that peer is a trusted proxy, the hops
it reports are read from ``Forwarded`` (RFC 7239, its ``for=`` parameters) or, when
there is none, ``X-Forwarded-For``, from the right: each trusted hop is passed over,
and the first hop that is not trusted is the client. A hop that is not an address
(``unknown``, an obfuscated ``_name``, garbage) ends the walk: the client is then
the last hop that could be checked. A peer that is not trusted is the client,
whatever headers it sent: an untrusted peer cannot choose its address.

The result feeds the failed-key guard, the access log, spans (``client.address``)
and the admin audit log.
"""

import ipaddress

_MAX_HOPS = 32  # NOTE: a header is read from the right; a long one is cut there


def _hop(text):
    """The address in one hop (``[2001:db8::1]:4711``, ``"192.0.2.1:80"``,
    ``192.0.2.1``), or None."""
    text = text.strip().strip('"').strip()
    if text.startswith('['):
        text = text[1 : text.find(']')] if ']' in text else ''
    elif text.count(':') == 1:
        text = text.split(':', 1)[0]  # an IPv4 address with a port
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_for(header):
    """The ``for=`` values of a ``Forwarded`` header, left to right."""
    out = []
    for element in header.split(','):
        for pair in element.split(';'):
            name, _, value = pair.partition('=')
            if name.strip().lower() == 'for':
                out.append(value)
    return out


class ClientAddress:
    """``address(req)``: the client's address as text."""

    __slots__ = ('trusted',)

    def __init__(self, trusted):
        self.trusted = tuple(trusted)

    def _trusts(self, ip):
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.trusted)

    def __call__(self, req):
        peer = req.remote_addr or ''
        if not self.trusted:
            return peer
        ip = _hop(peer)
        if ip is None or not self._trusts(ip):
            return peer
        forwarded = req.get_header('Forwarded')
        if forwarded is not None:
            hops = _forwarded_for(forwarded)
        else:
            xff = req.get_header('X-Forwarded-For')
            hops = xff.split(',') if xff is not None else []
        client = ip
        for hop in reversed(hops[-_MAX_HOPS:]):
            found = _hop(hop)
            if found is None:
                break
            client = found
            if not self._trusts(found):
                break
        if client.version == 6 and client.ipv4_mapped is not None:
            client = client.ipv4_mapped
        return str(client)
