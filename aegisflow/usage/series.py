"""Usage as time series with a fixed step, for charts: every bucket of the range is
present (zeros where nothing happened), optionally one series per tenant, key, model
or provider, the largest ``top`` of them by requests and the rest summed as
``other``.

Steps: ``minute`` (read from the per-request rows, so only within
``storage.retention_days``; at most a day), ``hour`` and ``day`` (UTC days), read
from the hourly rollups, which outlive retention. ``from`` is rounded down and ``to``
up to whole steps; without them the range is the last hour, day or 30 days
(``minute``, ``hour``, ``day``) up to now. A range holds at most `MAX_POINTS` steps.
"""

import time
from dataclasses import dataclass

from aegisflow.errors import InvalidRequest
from aegisflow.usage.query import FILTERS
from aegisflow.usage.query import SUMS
from aegisflow.usage.query import parse_time
from aegisflow.usage.query import rounded

STEPS = {'minute': 60, 'hour': 3600, 'day': 86400}
_DEFAULT_SPAN = {'minute': 3600, 'hour': 86400, 'day': 30 * 86400}
_MAX_MINUTE_SPAN = 86400
MAX_POINTS = 2000
BY = {'tenant': 'tenant', 'key': 'key_name', 'model': 'model', 'provider': 'provider'}
_PARAMS = set(FILTERS) | {'from', 'to', 'step', 'by', 'top'}
_ROW_SUMS = (
    "COUNT(*), SUM(CASE WHEN status >= 400 OR outcome != 'ok' THEN 1 ELSE 0 END), "
    'SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), '
    'SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost_usd), '
    'SUM(duration_ms)'
)
_ROLLUP_SUMS = ', '.join(f'SUM({c})' for c in SUMS)


def _step(params):
    step = params.get('step') or 'hour'
    if step not in STEPS:
        raise InvalidRequest(
            f"Invalid 'step' '{step[:20]}': expected minute, hour or day.",
            param='step',
        )
    return step


def _top(params):
    top = params.get('top') or '10'
    if not top.isdigit() or not 1 <= int(top) <= 100:
        raise InvalidRequest("Invalid 'top': expected 1 to 100.", param='top')
    return int(top)


def _range(params, step, now):
    size = STEPS[step]
    end = parse_time(params['to'], 'to') if params.get('to') else now
    start = (
        parse_time(params['from'], 'from')
        if params.get('from')
        else end - _DEFAULT_SPAN[step]
    )
    start, end = int(start // size * size), int(-(-end // size) * size)
    if end <= start:
        raise InvalidRequest("'to' must be after 'from'.", param='to')
    if (end - start) // size > MAX_POINTS:
        raise InvalidRequest(
            f'The range holds {(end - start) // size} steps of a {step}; at most '
            f'{MAX_POINTS}: narrow it or take a longer step.',
            param='from',
        )
    if step == 'minute' and end - start > _MAX_MINUTE_SPAN:
        raise InvalidRequest(
            'A series by the minute spans at most a day (it reads per-request '
            "rows); take step 'hour' for longer ranges.",
            param='from',
        )
    return start, end


@dataclass(frozen=True)
class SeriesQuery:
    step: str
    start: int  # unix seconds, a whole step
    end: int
    by: str | None = None
    top: int = 10
    filters: tuple = ()

    @classmethod
    def from_params(cls, params, now=None):
        unknown = set(params) - _PARAMS
        if unknown:
            name = sorted(unknown)[0][:40]
            raise InvalidRequest(
                f"Unknown query parameter '{name}'; expected "
                + ', '.join(sorted(_PARAMS))
                + '.',
                param=name,
            )
        step = _step(params)
        start, end = _range(params, step, time.time() if now is None else now)
        by = params.get('by') or None
        if by is not None and by not in BY:
            raise InvalidRequest(
                f"Invalid 'by' '{by[:40]}': expected tenant, key, model or provider.",
                param='by',
            )
        filters = tuple((FILTERS[k], str(params[k])) for k in FILTERS if params.get(k))
        return cls(step, start, end, by, _top(params), filters)

    @property
    def times(self):
        return list(range(self.start, self.end, STEPS[self.step]))

    def sql(self):
        step_ns = STEPS[self.step] * 10**9
        ts = 'ts_ns' if self.step == 'minute' else 'hour_ns'
        table = 'usage' if self.step == 'minute' else 'usage_hourly'
        sums = _ROW_SUMS if self.step == 'minute' else _ROLLUP_SUMS
        group = BY[self.by] if self.by else "''"
        where = [f'{ts} >= ?', f'{ts} < ?']
        args = [self.start * 10**9, self.end * 10**9]
        for column, value in self.filters:
            where.append(f'{column} = ?')
            args.append(value)
        sql = (
            f'SELECT {ts} - {ts} % {step_ns}, {group}, {sums} FROM {table} '
            f'WHERE {" AND ".join(where)} GROUP BY 1, 2'
        )
        return sql, args

    def run_empty(self):
        return self._shaped({})

    def run(self, db, database=None):
        sql, args = self.sql()
        step_ns = STEPS[self.step] * 10**9
        groups = {}
        for bucket, group, *sums in db.execute(sql, args):
            at = (bucket - self.start * 10**9) // step_ns
            groups.setdefault(group, []).append((at, sums))
        return self._shaped(groups)

    def _shaped(self, groups):
        """The answer: `times`, one series per kept group, `other`, `totals`."""
        points = len(self.times)
        series = {}
        for group, cells in groups.items():
            values = {name: [0] * points for name in SUMS}
            for at, sums in cells:
                for name, value in zip(SUMS, sums, strict=True):
                    values[name][at] += value or 0
            series[group] = values
        ranked = sorted(series, key=lambda g: (-sum(series[g]['requests']), g))
        kept, rest = ranked[: self.top], ranked[self.top :]
        other = None
        if rest:
            other = {name: [0] * points for name in SUMS}
            for group in rest:
                for name in SUMS:
                    column = other[name]
                    for i, value in enumerate(series[group][name]):
                        column[i] += value
        totals = dict.fromkeys(SUMS, 0)
        for values in series.values():
            for name in SUMS:
                totals[name] += sum(values[name])
        return {
            'step': self.step,
            'step_s': STEPS[self.step],
            'from': self.start,
            'to': self.end,
            'by': self.by,
            'times': self.times,
            'series': [
                {'group': g if self.by else None, **_shown(series[g])} for g in kept
            ],
            'other': dict(_shown(other), groups=len(rest)) if other else None,
            'totals': {name: rounded(name, v) for name, v in totals.items()},
        }


def _shown(values):
    return {name: [rounded(name, v) for v in column] for name, column in values.items()}
