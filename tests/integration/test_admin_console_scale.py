"""The console at scale, in a real Chromium: 100 run-time tenants, 10,000 keys of
one tenant and 30 days of hourly usage for every tenant. Lists come a page at a
time (the browser never holds 10,000 rows), every page of them is reachable, a
search finds one key among them, and the 30-day overview sums exactly what the
ledger holds. (Load times are measured by ``bench/console.py``.)"""

import pytest

from tests.support import console_data

ADMIN_KEY = 'adm-console-scale'


@pytest.fixture(scope='module')
def seeded(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('scale')
    total = console_data.seed(workdir / 'usage.sqlite')
    return workdir, total


@pytest.fixture(scope='module')
def gw(seeded):
    from tests.support.gateway import GatewayProcess

    workdir, _ = seeded
    gateway = GatewayProcess(
        console_data.CONFIG, workdir, env={console_data.ADMIN_ENV: ADMIN_KEY}
    ).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope='module')
def browser(gw):
    from playwright.sync_api import sync_playwright

    from tests.support.browser import Browser

    with sync_playwright() as playwright:
        b = Browser(playwright, gw.url)
        b.page.goto(gw.url + '/admin/')
        b.page.fill('#admin-key', ADMIN_KEY)
        b.page.click('#sign-in')
        b.ready('overview')
        yield b
        assert b.errors == [] and b.foreign == []
        b.close()


def rows(page, table):
    return page.locator(f'#{table} tbody tr').count()


def test_ten_thousand_keys_a_page_at_a_time_every_page_reachable(browser):
    page = browser.page
    browser.go('keys?tenant=team-000', 'keys')
    assert rows(page, 'key-table') == 50
    assert '1–50 of 10,000' in page.locator('.pager-pos').inner_text()
    page.click('button:has-text("Last »")')
    page.wait_for_selector('.pager-pos:has-text("9,951–10,000 of 10,000")')
    assert rows(page, 'key-table') == 50
    assert 'svc-09999' in page.locator('#key-table').inner_text()
    browser.shot('keys-10000')
    browser.go('keys?tenant=team-000&q=svc-04242', 'keys')
    assert rows(page, 'key-table') == 1
    assert 'key_scale04242' in page.locator('#key-table').inner_text()


def test_a_hundred_tenants_paged_with_their_budgets(browser):
    page = browser.page
    browser.go('tenants')
    assert rows(page, 'tenant-table') == 50
    assert '1–50 of 101' in page.locator('.pager-pos').inner_text()
    # acme (the file's, no budget) then 49 run-time tenants, each with its budget
    assert page.locator('#tenant-table .budget-bar').count() == 49
    page.click('button:has-text("Last »")')
    page.wait_for_selector('.pager-pos:has-text("101–101 of 101")')
    browser.go('tenants?q=team-09', 'tenants')
    assert rows(page, 'tenant-table') == 10


def test_thirty_days_of_a_hundred_tenants_sum_to_the_ledger(browser, seeded):
    page = browser.page
    _, total = seeded
    browser.go('overview?range=month&by=tenant', 'overview')
    shown = page.locator('#kpi-requests .kpi-value').inner_text()
    assert int(shown.replace(',', '')) == total
    legend = page.locator('#chart-requests .legend').inner_text()
    assert 'other (92)' in legend  # the top 8 drawn, the other 92 summed
    assert page.locator('#chart-requests polyline').count() == 9
    browser.shot('overview-30-days')
