"""The admin console's load times in a real Chromium, on a ledger like a busy
gateway's (`tests/support/console_data.py`: 100 run-time tenants, 10,000 keys of
one tenant, 30 days of hourly rollups for every tenant and two models).

Each measure is from navigation to the page showing its data (the page marks
itself ready after its last API answer is drawn), over a fresh page load, median
of `--rounds`; beside it, the API call the page waits on longest, alone.

    python bench/console.py --rounds 7 --append bench/RESULTS.md
"""

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from load import machine  # noqa: E402
from load import publish  # noqa: E402

from tests.support import console_data  # noqa: E402
from tests.support.browser import Browser  # noqa: E402
from tests.support.gateway import GatewayProcess  # noqa: E402

ADMIN = 'adm-bench-console'
PAGES = (
    # (what, fragment, page id, the API call it waits on longest)
    (
        'overview, 30 days per tenant',
        'overview?range=month&by=tenant',
        'overview',
        'usage/series?step=day&by=tenant&top=8',
    ),
    (
        'overview, last day per tenant',
        'overview?range=day&by=tenant',
        'overview',
        'usage/series?step=hour&by=tenant&top=8',
    ),
    (
        'overview, 30 days per model',
        'overview?range=month&by=model',
        'overview',
        'usage/series?step=day&by=model&top=8',
    ),
    ('tenants (101, 50 a page)', 'tenants', 'tenants', 'tenants'),
    (
        'keys (10,000, 50 a page)',
        'keys?tenant=team-000',
        'keys',
        'tenants/team-000/keys?limit=50',
    ),
    (
        'keys, last page',
        'keys?tenant=team-000&offset=9950',
        'keys',
        'tenants/team-000/keys?limit=50&offset=9950',
    ),
)


def measure(browser, fragment, page_id):
    page = browser.page
    url = f'{browser.origin}/admin/#/{fragment}'
    page.goto('about:blank')
    start = time.perf_counter()
    page.goto(url)
    browser.ready(page_id, timeout_ms=60000)
    return (time.perf_counter() - start) * 1000


def api_ms(url, path):
    start = time.perf_counter()
    r = requests.get(
        f'{url}/admin/v1/{path}',
        headers={'Authorization': f'Bearer {ADMIN}'},
        timeout=60,
    )
    r.raise_for_status()
    return (time.perf_counter() - start) * 1000, len(r.content)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--append')
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix='aegisflow-console-bench-') as workdir:
        seeded = time.perf_counter()
        total = console_data.seed(Path(workdir) / 'usage.sqlite')
        seeded = time.perf_counter() - seeded
        gw = GatewayProcess(
            console_data.CONFIG, workdir, env={console_data.ADMIN_ENV: ADMIN}
        ).start()
        try:
            with sync_playwright() as playwright:
                browser = Browser(playwright, gw.url)
                browser.page.goto(gw.url + '/admin/')
                browser.page.evaluate(
                    f"sessionStorage.setItem('aegisflow.adminKey', '{ADMIN}')"
                )
                results = {what: [] for what, *_ in PAGES}
                apis = {what: [] for what, *_ in PAGES}
                for _ in range(args.rounds):  # interleaved: the noise hits all alike
                    for what, fragment, page_id, path in PAGES:
                        results[what].append(measure(browser, fragment, page_id))
                        apis[what].append(api_ms(gw.url, path))
                assert browser.errors == [] and browser.foreign == [], browser.errors
                version = browser.browser.version
                browser.close()
        finally:
            gw.stop()
    lines = [
        f"## {datetime.date.today()}: the admin console's load times "
        '(bench/console.py)',
        '',
        f'Machine: {machine()}; Chromium {version} (Debian), headless, driven by '
        f'Playwright. Ledger: 100 run-time tenants, 10,000 keys of one tenant, 30 days '
        f'of hourly rollups for every tenant and 2 models ({total:,} requests; '
        f'seeded in {seeded:.1f} s). Median of {args.rounds} interleaved rounds; '
        'each a fresh page load, from navigation to the data drawn.',
        '',
        f'    python bench/console.py --rounds {args.rounds}',
        '',
        '| page | load, median ms | min | max | its slowest API call alone, median ms '
        '| its answer, KB |',
        '|---|---:|---:|---:|---:|---:|',
    ]
    for what, *_ in PAGES:
        times = results[what]
        api = [t for t, _ in apis[what]]
        size = apis[what][0][1]
        lines.append(
            f'| {what} | {statistics.median(times):.0f} | {min(times):.0f} | '
            f'{max(times):.0f} | {statistics.median(api):.0f} | {size / 1024:.1f} |'
        )
    publish('\n'.join(lines) + '\n', args.append)


if __name__ == '__main__':
    main()
