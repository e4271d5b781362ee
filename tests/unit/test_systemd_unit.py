import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / 'conf' / 'aegisflow.service'


def _service():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNIT)
    return parser['Service']


def test_systemd_unit_reload_is_hup_and_stop_is_graceful_term():
    svc = _service()
    assert svc['ExecReload'] == '/bin/kill -HUP $MAINPID'
    assert svc['ExecStop'] == '/bin/kill -TERM $MAINPID'
    assert 'gunicorn -c' in svc['ExecStart'] and 'gunicorn.conf.py' in svc['ExecStart']
    assert 'check-config' in svc['ExecStartPre']


@pytest.mark.skipif(
    not shutil.which('systemd-analyze'), reason='systemd-analyze missing'
)
def test_systemd_unit_verifies(tmp_path):
    root = Path(__file__).resolve().parents[2]
    text = UNIT.read_text().replace('/opt/aegisflow', str(root))
    unit = tmp_path / 'aegisflow.service'
    unit.write_text(text)
    out = subprocess.run(
        ['systemd-analyze', 'verify', str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in out.stderr.splitlines()
        if 'aegisflow.service' in line and 'is not executable' not in line
    ]
    assert problems == [], out.stderr
