"""Usage as time series (`aegisflow.usage.series`): every step present, groups
ranked with the rest summed as ``other``, minute steps read from the rows and
longer ones from the hourly rollups, with the same sums."""

import pytest

from aegisflow.errors import InvalidRequest
from aegisflow.usage.database import Database
from aegisflow.usage.ledger import Ledger
from aegisflow.usage.query import run_usage
from aegisflow.usage.series import SeriesQuery

HOUR = 3600
T0 = 1_780_000_000 // 86400 * 86400  # a UTC midnight


def row(ts, tenant, *, status=200, cost=0.5, duration=10.0):
    return (
        int(ts * 1e9),
        f'r{ts}{tenant}',
        tenant,
        'k',
        'm',
        'm',
        'm',
        'p',
        status,
        0,
        'ok',
        3,
        2,
        0,
        0,
        cost,
        duration,
        None,
        1,
        0,
        'chat',
        0,
        0.0,
    )


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / 'usage.sqlite')
    ledger = Ledger(path)
    rows = [row(T0 + 10, 'a'), row(T0 + 70, 'a', status=500), row(T0 + 2 * HOUR, 'b')]
    rows += [row(T0 + HOUR + i, f't{i}') for i in range(3)]
    for r in rows:
        ledger.add(r)
    assert ledger.flush() == len(rows)
    ledger.close()
    return Database.of(path)


def series(database, **params):
    return run_usage(database, SeriesQuery.from_params(params, now=T0 + 3 * HOUR))


def test_every_hour_is_present_and_groups_beyond_top_are_other(database):
    got = series(
        database,
        step='hour',
        by='tenant',
        top='2',
        **{'from': str(T0), 'to': str(T0 + 3 * HOUR)},
    )
    assert got['times'] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    first, second = got['series']
    assert first['group'] == 'a' and first['requests'] == [2, 0, 0]
    assert first['errors'] == [1, 0, 0] and first['duration_ms'] == [20.0, 0, 0]
    assert second['group'] == 'b' and second['requests'] == [0, 0, 1]
    assert got['other']['groups'] == 3 and got['other']['requests'] == [0, 3, 0]
    assert got['totals']['requests'] == 6 and got['totals']['cost_usd'] == 3.0


def test_minutes_from_rows_and_days_from_rollups_agree(database):
    minutes = series(
        database, step='minute', **{'from': str(T0), 'to': str(T0 + 3 * HOUR)}
    )
    assert len(minutes['times']) == 180
    assert minutes['series'][0]['requests'][:2] == [1, 1]
    days = series(database, step='day', **{'from': str(T0), 'to': str(T0 + HOUR)})
    assert days['times'] == [T0]  # 'to' rounded up to the whole day
    assert days['series'][0]['requests'] == [6]
    assert days['totals'] == minutes['totals']


def test_the_default_range_ends_now_and_a_missing_ledger_is_all_zeros(tmp_path):
    empty = Database.of(str(tmp_path / 'none.sqlite'))
    got = series(empty, step='hour')
    assert got['to'] == T0 + 3 * HOUR and got['from'] == T0 + 3 * HOUR - 86400
    assert got['series'] == [] and got['other'] is None
    assert got['totals']['requests'] == 0


@pytest.mark.parametrize(
    ('params', 'param', 'words'),
    [
        ({'step': 'week'}, 'step', 'minute, hour or day'),
        ({'by': 'colour'}, 'by', 'tenant, key, model or provider'),
        ({'top': '0'}, 'top', '1 to 100'),
        ({'step': 'minute', 'from': '0', 'to': str(2 * 86400)}, 'from', 'at most'),
        ({'step': 'hour', 'from': '0'}, 'from', 'at most 2000'),
        ({'from': str(T0), 'to': str(T0)}, 'to', "'to' must be after"),
        ({'group_by': 'tenant'}, 'group_by', 'Unknown query parameter'),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(params, param, words):
    with pytest.raises(InvalidRequest) as refused:
        SeriesQuery.from_params(params, now=T0)
    assert refused.value.param == param and words in str(refused.value)
