"""Self-signed certificates for loopback TLS servers."""

import subprocess
from pathlib import Path


def self_signed(where, name='localhost'):
    """A certificate for 127.0.0.1 named `name`, made by openssl in `where`: (key
    path, certificate path)."""
    key, cert = Path(where) / f'{name}.key', Path(where) / f'{name}.pem'
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
         '-subj', f'/CN={name}', '-addext', 'subjectAltName=IP:127.0.0.1',
         '-keyout', str(key), '-out', str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert
