"""The admin console in a real Chromium against a real gateway: sign in with the
admin key, create a key (its secret shown once, copied to the clipboard) and use it
with the ``openai`` SDK, see the request in the overview's data, edit and revoke
the key (the SDK then gets 401), force a breaker open and closed, read the audit
log and the usage explorer (its CSV downloaded). Hostile text reaching the page
shows as text; no console error, no dialog and no request to any other host.
Screenshots of every page go to ``artifacts/console/``."""

import json

import openai
import pytest
import requests

from tests.support.gateway import wait_until
from tests.support.metrics import scrape
from tests.support.metrics import total

ADMIN_KEY = 'adm-console-secret'
ADMIN = {'Authorization': f'Bearer {ADMIN_KEY}'}
HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>'
CONFIG = """
server: {workers: 2, admin_key_env: CONSOLE_ADMIN}
providers:
  - {name: mock, type: mock, models: [mock], prices: {mock: {input: 1, output: 2}}}
routes: [{match: "*", targets: [mock]}]
tenants:
  - id: acme
    keys: [{key: sk-acme-console, name: config-key}]
    rate_limit: {requests_per_minute: 600}
    budget: {daily_usd: 5, warn_at: 0.5}
  - id: globex
    keys: [{key: sk-globex-console, name: ops}]
storage: {sqlite_path: usage.sqlite}
telemetry: {flush_interval_ms: 50}
"""


@pytest.fixture(scope='module')
def gw(gateway_factory):
    return gateway_factory(CONFIG, env={'CONSOLE_ADMIN': ADMIN_KEY})


@pytest.fixture(scope='module')
def browser(gw):
    from playwright.sync_api import sync_playwright

    from tests.support.browser import Browser

    with sync_playwright() as playwright:
        b = Browser(playwright, gw.url)
        yield b
        b.close()


@pytest.fixture(scope='module')
def signed_in(browser):
    page = browser.page
    page.goto(browser.origin + '/admin/')
    page.wait_for_selector('#login-form')
    browser.shot('sign-in')
    page.fill('#admin-key', 'not-the-key')
    page.click('#sign-in')
    page.wait_for_selector('#login-error:has-text("not the admin key")')
    page.fill('#admin-key', ADMIN_KEY)
    page.click('#sign-in')
    browser.ready('overview')
    # the key is kept for this tab only, never as a cookie
    assert page.evaluate("sessionStorage.getItem('aegisflow.adminKey')") == ADMIN_KEY
    assert browser.context.cookies() == []
    return browser


def sdk(gw, key):
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=10)


def ask(gw, key):
    return sdk(gw, key).chat.completions.create(
        model='mock', messages=[{'role': 'user', 'content': 'hello console'}]
    )


def counted(gw, n):
    """Wait until the metrics count `n` requests in all (the master drains the
    workers' events in order, so anything sent before the n-th is counted too)."""
    wait_until(
        lambda: total(scrape(gw.url), 'aegisflow_requests_total') >= n,
        timeout=10,
        what=f'{n} requests counted',
    )
    return total(scrape(gw.url), 'aegisflow_requests_total')


def test_the_files_need_no_key_the_data_does_and_every_answer_is_locked_down(gw):
    ask(gw, 'sk-globex-console')
    assert counted(gw, 1) == 1
    page = requests.get(gw.url + '/admin/', timeout=5)
    assert page.status_code == 200
    assert page.headers['Content-Type'].startswith('text/html')
    script = requests.get(gw.url + '/admin/console.js', timeout=5)
    assert script.headers['Content-Type'].startswith('text/javascript')
    again = requests.get(
        gw.url + '/admin/console.js',
        headers={'If-None-Match': script.headers['ETag']},
        timeout=5,
    )
    assert again.status_code == 304 and again.content == b''
    data = requests.get(gw.url + '/admin/v1/usage', timeout=5)
    assert data.status_code == 401
    for r in (page, script, data):
        csp = r.headers['Content-Security-Policy']
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert 'unsafe-inline' not in csp and "frame-ancestors 'none'" in csp
        assert r.headers['X-Frame-Options'] == 'DENY'
        assert r.headers['Referrer-Policy'] == 'no-referrer'
        assert r.headers['X-Content-Type-Options'] == 'nosniff'
    assert data.headers['Cache-Control'] == 'no-store'
    # no inline script or style in the page itself: the policy would block it
    assert '<script>' not in page.text and 'style=' not in page.text
    assert ' on' not in page.text.replace(' one', '').replace(' only', '')
    missing = requests.get(gw.url + '/admin/nope.js', timeout=5)
    assert (
        missing.status_code == 404 and missing.json()['error']['code'] == 'unknown_url'
    )
    # page loads are not traffic: the request after them is the second counted
    ask(gw, 'sk-globex-console')
    assert counted(gw, 2) == 2


def test_a_key_made_in_the_console_works_shows_up_and_stops_when_revoked(gw, signed_in):
    b = signed_in
    page = b.page
    b.go('keys?tenant=acme', 'keys')
    page.click('#key-new')
    form = page.locator('#key-create')
    form.locator('input[name=name]').fill('console-made')
    form.locator('input[name=rpm]').fill('100')
    form.locator('input[name=daily_usd]').fill('2.5')
    metadata = json.dumps({'owner': HOSTILE})
    form.locator('textarea[name=metadata]').fill(metadata)
    form.locator('button[type=submit]').click()
    secret = page.locator('#new-secret').inner_text()
    assert secret.startswith('sk-')
    b.shot('key-created')
    page.click('#copy-secret')
    page.wait_for_selector('.copied:has-text("copied")')
    assert page.evaluate('navigator.clipboard.readText()') == secret

    answer = ask(gw, secret)
    assert answer.choices[0].message.content

    # the request reaches the overview's data (the ledger is written in batches)
    def seen():
        b.go('overview?range=hour&by=tenant', 'overview')
        return 'acme' in page.locator('#overview-groups').inner_text()

    wait_until(seen, timeout=20, interval=0.3, what='the request in the overview')
    assert (
        int(page.locator('#kpi-requests .kpi-value').inner_text().replace(',', '')) >= 1
    )
    assert page.locator('#chart-requests polyline').count() >= 1
    b.shot('overview')

    # the key's row, with the hostile metadata as text
    b.go('keys?tenant=acme&q=console-made', 'keys')
    table = page.locator('#key-table')
    assert HOSTILE in table.inner_text()
    assert page.locator('img').count() == 0
    assert page.locator('main script').count() == 0
    b.shot('keys')

    # edit its scope in the console: the change is live for the next request
    page.locator('#key-table button:has-text("Edit")').click()
    page.locator('#key-edit input[name=rpm]').fill('1')
    page.locator('#key-edit button[type=submit]').click()
    page.wait_for_selector('#key-table:has-text("1 req/min")')
    with pytest.raises(openai.RateLimitError):
        for _ in range(3):
            ask(gw, secret)

    # revoke it (the button asks once more)
    revoke = page.locator('#key-table button:has-text("Revoke")')
    revoke.click()
    page.locator('#key-table button:has-text("Revoke now?")').click()
    page.wait_for_selector('#key-table .badge.revoked')
    with pytest.raises(openai.AuthenticationError):
        ask(gw, secret)

    # the update and its hostile metadata, in the audit log, as text
    b.go('audit?action=key.update', 'audit')
    assert HOSTILE in page.locator('#audit-table').inner_text()
    assert page.locator('img').count() == 0
    b.shot('audit')
    assert b.dialogs == []


def test_a_breaker_forced_open_shows_on_the_page_and_closes_again(gw, signed_in):
    b = signed_in
    page = b.page
    b.go('providers')
    badge = page.locator('.badge[data-target="mock/mock"]')
    assert badge.inner_text() == 'closed'
    page.locator('button[data-open="mock/mock"]').click()
    page.wait_for_selector('.badge[data-target="mock/mock"]:has-text("open")')
    shown = requests.get(gw.url + '/admin/v1/breakers', headers=ADMIN, timeout=5)
    assert {x['target']: x['state'] for x in shown.json()['breakers']} == {
        'mock/mock': 'open'
    }
    with pytest.raises(openai.APIStatusError) as refused:
        ask(gw, 'sk-globex-console')
    assert refused.value.status_code == 503
    b.shot('providers')
    page.locator('button[data-close="mock/mock"]').click()
    page.wait_for_selector('.badge[data-target="mock/mock"]:has-text("closed")')
    assert ask(gw, 'sk-globex-console').choices


def test_tenants_show_limits_spend_against_budget_and_live_counters(gw, signed_in):
    b = signed_in
    page = b.page
    for _ in range(3):
        ask(gw, 'sk-acme-console')
    b.go('tenants')
    text = page.locator('#tenant-table').inner_text()
    assert 'acme' in text and 'globex' in text and '600 req/min' in text
    assert page.locator('#tenant-table .budget-bar .warn-line').count() == 1
    b.shot('tenants')
    page.click('#tenant-table a:has-text("acme")')
    page.wait_for_selector('#tenant-counters')
    assert 'config-key' in page.locator('#tenant-keys').inner_text()
    counters = page.locator('#tenant-counters').inner_text()
    assert 'left' in counters and 'spent' in counters
    b.shot('tenant')


def test_the_usage_explorer_groups_and_downloads_csv(gw, signed_in):
    b = signed_in
    page = b.page
    ask(gw, 'sk-globex-console')

    def grouped():
        b.go('usage?group_by=tenant', 'usage')
        return 'globex' in page.locator('#usage-table').inner_text()

    wait_until(grouped, timeout=20, interval=0.3, what='globex in the usage table')
    b.shot('usage')
    with page.expect_download() as download:
        page.click('#usage-csv')
    csv = open(download.value.path()).read().splitlines()
    assert csv[0].startswith('tenant,requests,errors')
    assert any(line.startswith('globex,') for line in csv[1:])
    # the CSV is the API's own answer, byte for byte
    api = requests.get(
        gw.url + '/admin/v1/usage',
        params={'group_by': 'tenant', 'format': 'csv'},
        headers=ADMIN,
        timeout=5,
    )
    assert api.text.splitlines()[0] == csv[0]


def test_a_tenant_made_in_the_console_serves_and_is_deleted_there(gw, signed_in):
    b = signed_in
    page = b.page
    b.go('tenants')
    page.click('#tenant-new')
    form = page.locator('#tenant-create')
    form.locator('input[name=id]').fill('acme')  # the config file's: refused
    form.locator('button[type=submit]').click()
    page.wait_for_selector(
        '#tenant-create .notice:has-text("defined in the config file")'
    )
    form.locator('input[name=id]').fill('console-team')
    form.locator('input[name=rpm]').fill('30')
    form.locator('input[name=daily_usd]').fill('2')
    form.locator('input[name=warn_at]').fill('0.5')
    form.locator('button[type=submit]').click()
    page.wait_for_selector('#tenant-counters')
    assert page.locator('#tenant-id').inner_text() == 'console-team'
    counters = page.locator('#tenant-counters').inner_text()
    assert '30/min' in counters and '$2.00 a day' in counters
    shown = requests.get(
        f'{gw.url}/admin/v1/tenants/console-team', headers=ADMIN, timeout=5
    ).json()
    assert shown['rate_limit'] == {'requests_per_minute': 30}
    assert shown['budget']['warn_at'] == 0.5
    b.shot('tenant-created')
    page.click('#tenant-delete')
    page.click('#tenant-delete')  # asked once more
    page.wait_for_selector('#tenant-table')
    gone = requests.get(
        f'{gw.url}/admin/v1/tenants/console-team', headers=ADMIN, timeout=5
    )
    assert gone.status_code == 404


def test_a_refused_key_signs_out_and_nothing_left_for_another_host(gw, signed_in):
    b = signed_in
    page = b.page
    page.evaluate("sessionStorage.setItem('aegisflow.adminKey', 'stale-key')")
    page.reload()  # NOTE: whatever page it is on, it asks the API again
    page.wait_for_selector('#login-error:has-text("sign in again")')
    assert page.evaluate("sessionStorage.getItem('aegisflow.adminKey')") is None
    # the refused calls are the console errors expected (the stale key's 401, the
    # config tenant's 409): nothing else
    errors = [e for e in b.errors if ' 401 ' not in e and ' 409 ' not in e]
    assert errors == []
    assert b.foreign == []
    assert all(u.startswith(b.origin + '/admin') for u in b.requests), b.requests
    assert b.dialogs == []
