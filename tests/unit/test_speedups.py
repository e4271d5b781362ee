"""A worker's cheaper Gunicorn layer: the Date header formatted once a second,
and the settings read once, with Gunicorn's values and properties."""

import email.utils
import time

import pytest
from gunicorn.config import Config

from workers import speedups


def test_the_date_is_gunicorns_and_changes_with_the_second(monkeypatch):
    now = [1_700_000_000.25]
    monkeypatch.setattr(speedups.time, 'time', lambda: now[0])
    first = speedups.http_date()
    assert first == 'Tue, 14 Nov 2023 22:13:20 GMT'
    now[0] += 0.5
    assert speedups.http_date() is first  # the same second: not formatted again
    now[0] += 0.5
    assert speedups.http_date() == 'Tue, 14 Nov 2023 22:13:21 GMT'


def test_a_given_timestamp_is_formatted_as_asked():
    stamp = time.time() - 86400 * 3
    assert speedups.http_date(stamp) == email.utils.formatdate(stamp, usegmt=True)


def test_settled_settings_are_the_configs_values():
    cfg = Config()
    cfg.set('keepalive', 7)
    cfg.set('limit_request_line', 1234)
    settled = speedups.SettledConfig(cfg)
    for name in cfg.settings:
        assert getattr(settled, name) == getattr(cfg, name), name
    assert settled.keepalive == 7 and settled.limit_request_line == 1234
    # properties are the config's own
    assert settled.is_ssl == cfg.is_ssl
    assert settled.sendfile == cfg.sendfile
    assert settled.env == cfg.env
    assert settled.settings is cfg.settings
    with pytest.raises(AttributeError):
        settled.no_such_setting  # noqa: B018
    with pytest.raises(AttributeError):
        settled.keepalive = 3


def test_install_settles_the_workers_settings_and_the_date(monkeypatch):
    from gunicorn import util

    monkeypatch.setattr(util, 'http_date', util.http_date)  # NOTE: put back after

    class Worker:
        cfg = Config()

    worker = Worker()
    worker.cfg.set('keepalive', 9)
    speedups.install(worker)
    assert isinstance(worker.cfg, speedups.SettledConfig)
    assert worker.cfg.keepalive == 9
    assert util.http_date is speedups.http_date
