"""Every production report's HTML meets WCAG 2.1 AA as axe-core sees it in a real browser.

axe-core (npm, pinned in tests/package.json, installed into the git-ignored tests/.node/) is
injected by Playwright into Debian's headless Chromium, over each report run on the bundled city;
the test fails on any serious or critical violation, naming the rule and the elements.

Set up once (CI does it in .ci/run):
    apt-get install -y chromium nodejs npm
    mkdir -p tests/.node && cp tests/package.json tests/package-lock.json tests/.node/
    npm ci --prefix tests/.node --no-audit --no-fund
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from citykit.reports.run import run_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORTS = ["12-service-performance", "13-equity-report", "14-quality-scorecard"]
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent.parent / ".node" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "needs Debian's chromium (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "needs node and npm (apt-get install -y nodejs npm)"
    if not AXE.exists():
        return "needs axe-core: npm ci --prefix tests/.node (see this file's docstring)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def axe_violations(browser, html: Path) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on a page opened from disk (nothing fetched from the network)."""
    page = browser.new_page()
    try:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        page.goto(html.resolve().as_uri(), wait_until="load")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
            WCAG_AA,
        )
    finally:
        page.close()
    return result["violations"]


def describe(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in violations
    )


def test_axe_finds_an_image_without_alt_text(browser, tmp_path):
    """The check can fail: a page with an unlabelled image and no language is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><head><title>t</title></head><body><img src='x.png'></body></html>", encoding="utf-8")
    rules = {v["id"] for v in axe_violations(browser, page) if v["impact"] in BLOCKING}
    assert {"image-alt", "html-has-lang"} <= rules


@pytest.mark.parametrize("module", REPORTS)
def test_report_has_no_serious_or_critical_violation(module, browser, riverton, tmp_path):
    result = run_report(module, {}, tmp_path)
    violations = [v for v in axe_violations(browser, result.html) if v["impact"] in BLOCKING]
    assert not violations, f"{module}:\n{describe(violations)}"
