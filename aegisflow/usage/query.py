"""Usage queries over the ledger: filters, a time range, grouping, totals.

Filters are exact matches on ``tenant``, ``key``, ``model`` and ``provider``; ``from``
and ``to`` take ISO 8601 dates or times (UTC when no offset is given) or unix seconds,
``from`` inclusive and ``to`` exclusive; ``group_by`` is a comma list of ``hour``,
``day``, ``tenant``, ``key``, ``model``, ``provider``. Every row sums requests, errors
(status >= 400 or a broken stream), the five token counts, the cost and the
requests' summed duration (``duration_ms``; its average is ``duration_ms /
requests``).

A query whose range starts and ends on whole hours (or is open) is answered from the
hourly rollups, which outlive per-request retention; any other from the per-request
rows. Both give the same answer while the rows are kept.
"""

import csv
import datetime
import io
import sqlite3
from dataclasses import dataclass

from aegisflow.errors import InvalidRequest
from aegisflow.usage.database import Database
from aegisflow.usage.ledger import ERROR_SQL
from aegisflow.usage.ledger import HOUR_NS
from aegisflow.usage.ledger import ROLLUP_SUMS

GROUPS = {
    'hour': None,  # per database: Database.group_expr
    'day': None,
    'tenant': 'tenant',
    'key': 'key_name',
    'model': 'model',
    'provider': 'provider',
}
FILTERS = {
    'tenant': 'tenant',
    'key': 'key_name',
    'model': 'model',
    'provider': 'provider',
}
SUMS = ROLLUP_SUMS  # what every usage row sums
_SELECT_SUMS = (
    f'COUNT(*), SUM({ERROR_SQL}), SUM(prompt_tokens), SUM(completion_tokens), '
    'SUM(cached_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), '
    'SUM(cost_usd), SUM(duration_ms)'
)
_ROUNDED = {
    'cost_usd': lambda v: round(v, 9),
    'duration_ms': lambda v: round(v, 3),
}


def rounded(name, value):
    """A summed column as the API shows it: counts whole, cost to the nano-dollar,
    durations to the microsecond."""
    return _ROUNDED.get(name, int)(value or 0)


_SELECT_ROLLUP_SUMS = ', '.join(f'SUM({c})' for c in ROLLUP_SUMS)


_LATEST = (2**63 - 1) / 1e9  # the ledger keeps nanoseconds in 64 bits: year 2262


def parse_time(value, param):
    """Unix seconds from an ISO 8601 date/time or a number (1970 to 2262)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = _parse_iso(value, param)
    if not 0 <= seconds < _LATEST:
        raise InvalidRequest(
            f"Invalid '{param}': expected a time from 1970 to 2262.", param=param
        )
    return seconds


def _parse_iso(value, param):
    try:
        when = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{param}': expected an ISO 8601 date or time, or unix seconds.",
            param=param,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


@dataclass(frozen=True)
class UsageQuery:
    filters: tuple = ()  # ((column, value), ...)
    start: float | None = None
    end: float | None = None
    group_by: tuple = ()

    @classmethod
    def from_params(cls, params):
        unknown = set(params) - set(FILTERS) - {'from', 'to', 'group_by', 'format'}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidRequest(
                f"Unknown query parameter '{name[:40]}'; expected "
                'tenant, key, model, provider, from, to, group_by, '
                'format.',
                param=name[:40],
            )
        filters = tuple((FILTERS[k], str(params[k])) for k in FILTERS if params.get(k))
        start = parse_time(params['from'], 'from') if params.get('from') else None
        end = parse_time(params['to'], 'to') if params.get('to') else None
        groups = tuple(
            g.strip() for g in (params.get('group_by') or '').split(',') if g.strip()
        )
        for g in groups:
            if g not in GROUPS:
                raise InvalidRequest(
                    f"Invalid 'group_by' value '{g[:40]}'; expected "
                    'hour, day, tenant, key, model or provider.',
                    param='group_by',
                )
        if start is not None and end is not None and end <= start:
            raise InvalidRequest("'to' must be after 'from'.", param='to')
        return cls(filters, start, end, groups)

    @property
    def hourly(self):
        """Whether the hourly rollups can answer (the range is on whole hours)."""
        return all(
            t is None or int(t * 1e9) % HOUR_NS == 0 for t in (self.start, self.end)
        )

    def sql(self, hourly=None, database=None):
        hourly = self.hourly if hourly is None else hourly
        database = database or _SQLITE
        ts = 'hour_ns' if hourly else 'ts_ns'
        where, args = [], []
        for column, value in self.filters:
            where.append(f'{column} = ?')
            args.append(value)
        if self.start is not None:
            where.append(f'{ts} >= ?')
            args.append(int(self.start * 1e9))
        if self.end is not None:
            where.append(f'{ts} < ?')
            args.append(int(self.end * 1e9))
        groups = [GROUPS[g] or database.group_expr(g, ts) for g in self.group_by]
        sums = _SELECT_ROLLUP_SUMS if hourly else _SELECT_SUMS
        select = ', '.join(groups + [sums])
        sql = f'SELECT {select} FROM {"usage_hourly" if hourly else "usage"}'
        if where:
            sql += ' WHERE ' + ' AND '.join(where)
        if groups:
            order = ', '.join(str(i + 1) for i in range(len(groups)))
            sql += f' GROUP BY {order} ORDER BY {order}'
        return sql, args

    def run_empty(self):
        return [], dict.fromkeys(SUMS, 0)

    def run(self, db, hourly=None, database=None):
        sql, args = self.sql(hourly, database)
        rows = []
        totals = dict.fromkeys(SUMS, 0)
        for record in db.execute(sql, args):
            keys, sums = record[: len(self.group_by)], record[len(self.group_by) :]
            if not self.group_by and not sums[0]:
                continue
            row = dict(zip(self.group_by, keys, strict=True))
            for name, value in zip(SUMS, sums, strict=True):
                row[name] = rounded(name, value)
                totals[name] += row[name]
            rows.append(row)
        for name in _ROUNDED:
            totals[name] = rounded(name, totals[name])
        return rows, totals


_SQLITE = Database.sqlite(':memory:')


def run_usage(database, query):
    """What `query` answers on `database` (a `UsageQuery`: rows and totals; a
    `SeriesQuery`: its series); empty when there is no ledger yet. Raises
    database.ERRORS when the ledger cannot be read."""
    if not database.exists():
        return query.run_empty()
    try:
        db = database.connect(readonly=True)
    except sqlite3.OperationalError:
        if not database.exists():  # NOTE: removed between the two looks
            return query.run_empty()
        raise
    try:
        return query.run(db, database=database)
    except sqlite3.OperationalError as exc:
        if 'no such table' in str(exc):  # created, schema not yet written
            return query.run_empty()
        raise
    finally:
        db.close()


def to_csv(rows, group_by):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(list(group_by) + list(SUMS))
    for row in rows:
        writer.writerow([row[g] for g in group_by] + [row[s] for s in SUMS])
    return out.getvalue()


def to_table(rows, group_by):
    """A plain-text table for the terminal."""
    header = list(group_by) + list(SUMS)
    lines = [[str(row[h]) for h in header] for row in rows]
    widths = [
        max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(header)
    ]
    fmt = '  '.join(
        ('{:<' if i < len(group_by) else '{:>') + f'{w}}}' for i, w in enumerate(widths)
    )
    return '\n'.join([fmt.format(*header)] + [fmt.format(*line) for line in lines])
