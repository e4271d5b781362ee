"""The cooperative worker's own parts, each in a process of its own (patching the
standard library is for good): urllib3 imported before the worker patched ssl
builds cooperative TLS contexts again, and the warning about it is not logged."""

import subprocess
import sys
import textwrap

from tests.support.gateway import ROOT

SCRIPT = textwrap.dedent(
    """
    import warnings
    import urllib3.util.ssl_ as u  # as the master imports it with an OTLP exporter
    from gevent import monkey
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        monkey.patch_all()
    from workers.gevent import _report, rebind_ssl_names
    rebind_ssl_names()
    context = u.create_urllib3_context()
    print(type(context).__module__)

    class Log:
        def warning(self, *args):
            print('logged', args[1][:40])

    for warning in caught:
        _report(Log(), warning)
    """
)


def test_urllib3_imported_before_patching_makes_cooperative_tls_contexts():
    out = subprocess.run(
        [sys.executable, '-c', SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    # without the rebinding, creating the context recurses without end
    assert out.stdout.splitlines() == ['gevent.ssl']
