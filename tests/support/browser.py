"""A real Chromium (Debian's) driven by Playwright, for the admin console's tests.

Every request the page makes is recorded, and any to a host other than the
gateway is refused and kept as evidence; console errors, page errors and dialogs
are kept too, so a test can assert there were none. Screenshots go to
``artifacts/console/`` (not committed).
"""

import shutil
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / 'artifacts' / 'console'


def chromium_path():
    for name in ('chromium', 'chromium-browser'):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "Debian's chromium is not installed (make test installs it: "
        'apt-get install chromium)'
    )


class Browser:
    """One browser context on `origin`; `page` is its one tab."""

    def __init__(self, playwright, origin):
        self.origin = origin
        self.browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=['--headless=new']
        )
        self.context = self.browser.new_context(
            base_url=origin, viewport={'width': 1400, 'height': 1000}
        )
        self.context.grant_permissions(
            ['clipboard-read', 'clipboard-write'], origin=origin
        )
        self.requests = []  # every URL the page asked for
        self.foreign = []  # those for any other host: refused
        self.errors = []  # console errors and uncaught page errors
        self.dialogs = []  # alert/confirm/prompt: none expected
        self.context.route('**/*', self._route)
        self.page = self.context.new_page()
        self.page.on('console', self._console)
        self.page.on('pageerror', lambda exc: self.errors.append(f'pageerror: {exc}'))
        self.page.on('dialog', self._dialog)

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme in ('blob', 'data') or (
            f'{parts.scheme}://{parts.netloc}' == self.origin
        ):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def _console(self, message):
        if message.type == 'error':
            self.errors.append(f'console: {message.text}')

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ready(self, page_id, timeout_ms=15000):
        """Wait until the console shows `page_id` with its data (not 'Loading')."""
        self.page.wait_for_selector(
            f'#page-{page_id}[data-ready="true"]', timeout=timeout_ms
        )

    def go(self, fragment, page_id=None):
        """Show `fragment` freshly rendered (the same fragment again reloads it)."""
        url = f'{self.origin}/admin/#/{fragment}'
        page = self.page
        if page.url.startswith(self.origin):
            page.evaluate(
                "document.querySelectorAll('[data-ready]')"
                '.forEach((e) => { delete e.dataset.ready; })'
            )
        if page.url == url:
            page.reload()
        else:
            page.goto(url)
        self.ready(page_id or fragment.split('?')[0].split('/')[0])

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f'{name}.png'), full_page=True)

    def close(self):
        self.context.close()
        self.browser.close()
