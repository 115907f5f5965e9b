"""Screenshots of report pages in headless Chromium, kept as test artifacts.

    from report_screens import ARTIFACTS, first_screen, screenshot
    with first_screen() as shoot:
        png = shoot(result.html, "12-service-performance-riverton")   # test-artifacts/reports/...png

`screenshot(page_html, name)` opens a report's HTML from disk (nothing fetched from the network) at
1280 × 900 CSS pixels in Debian's Chromium (the one path and flag list of `notebook_helpers`) and
saves the first 900 px (the first screen) as `test-artifacts/reports/NAME.png`, a folder git
ignores and CI keeps as an artifact. `first_screen()` opens one browser for several shots and also
returns the page's text above the fold (`shoot.text(html)`) for tests of what the first screen shows.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from notebook_helpers import CHROMIUM, CHROMIUM_ARGS

from citykit import paths

ARTIFACTS = paths.course_root() / "test-artifacts" / "reports"
WIDTH, HEIGHT = 1280, 900  # the first screen of a laptop


def missing() -> str | None:
    """Why screenshots cannot be taken here, or None."""
    if not CHROMIUM:
        return "needs Debian's chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs playwright (pip install playwright)"
    return None


class _Shooter:
    def __init__(self, browser) -> None:
        self.browser = browser

    def _open(self, html: Path):
        page = self.browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else route.abort())  # fmt: skip
        page.goto(Path(html).resolve().as_uri(), wait_until="load")
        return page

    def __call__(self, html: Path, name: str, height: int = HEIGHT) -> Path:
        """Save the first `height` px of the page as test-artifacts/reports/NAME.png; returns the path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / f"{name}.png"
        page = self._open(html)
        try:
            page.screenshot(path=str(target), full_page=height > HEIGHT,
                            clip={"x": 0, "y": 0, "width": WIDTH, "height": height})  # fmt: skip
        finally:
            page.close()
        return target

    def text(self, html: Path, height: int = HEIGHT) -> str:
        """The text of the elements whose top is within the first `height` px (the first screen)."""
        page = self._open(html)
        try:
            return page.evaluate(
                """(height) => {
                    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                    const parts = [];
                    while (walker.nextNode()) {
                        const node = walker.currentNode;
                        const box = node.parentElement && node.parentElement.getBoundingClientRect();
                        if (box && box.top < height && box.bottom > 0 && node.textContent.trim()
                            && getComputedStyle(node.parentElement).visibility !== 'hidden') {
                            parts.push(node.textContent.trim());
                        }
                    }
                    return parts.join(' ');
                }""",
                height,
            )
        finally:
            page.close()

    def evaluate(self, html: Path, script: str, arg=None, media: str | None = None):
        """Run `script` (a JS function of `arg`) on the page, optionally under `media` ("print")."""
        page = self._open(html)
        try:
            if media:
                page.emulate_media(media=media)
            return page.evaluate(script, arg)
        finally:
            page.close()


@contextlib.contextmanager
def first_screen():
    """A headless Chromium for screenshots and first-screen text (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield _Shooter(browser)
        finally:
            browser.close()


def screenshot(html: Path, name: str, height: int = HEIGHT) -> Path:
    """One screenshot (opens and closes a browser): test-artifacts/reports/NAME.png."""
    with first_screen() as shoot:
        return shoot(html, name, height)
