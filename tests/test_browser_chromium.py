"""The browser in a real browser: headless Chromium (Debian's `chromium`, no download) opens the synthetic run's
index from file://, searches, clicks through to a neuron page, checks the highlighted tokens, the escaping and the
layout of awkward text, saves a screenshot, and fails on any console error, exception or failed load.

Chromium is driven by Playwright for Python (pinned in requirements.txt) with `executable_path` set to the system's
Chromium: the pip wheel brings Playwright's driver, not a browser, and nothing is downloaded. `.ci/run` installs
Chromium (`apt-get install -y chromium`); without it (or without Playwright) these tests skip and say so. Set
NEUROTEXT_CHROMIUM to use another binary.

Run as a script to photograph any page: ``python tests/test_browser_chromium.py URL OUT.png [WIDTH HEIGHT]``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

#: Chromium flags on top of Playwright's own (it adds --headless, --no-sandbox, the remote-debugging pipe).
CHROMIUM_FLAGS = ("--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-extensions", "--mute-audio",
                  "--hide-scrollbars")  # fmt: skip


def find_chromium() -> str | None:
    """NEUROTEXT_CHROMIUM, else `chromium` / `chromium-browser` on PATH, else None."""
    explicit = os.environ.get("NEUROTEXT_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


def playwright_missing() -> str | None:
    """Why Playwright cannot be used here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"playwright is not installed ({error}): pip install -r requirements.txt"
    return None


class Chromium:
    """A headless Chromium with one page, driven by Playwright; the few page helpers the tests use.

    `events` collects what the page reported: console messages, uncaught exceptions, failed requests.
    """

    def __init__(self, binary: str, width: int = 1200, height: int = 900) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(
                executable_path=binary, headless=True, args=list(CHROMIUM_FLAGS), timeout=60_000
            )
        except Exception:
            self._playwright.stop()
            raise
        self.page = self.browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
        self.page.set_default_timeout(30_000)
        self.events: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.events.append(f"exception: {error}"))
        self.page.on("requestfailed", lambda request: self.events.append(
            f"failed load: {request.url} ({request.failure})"))  # fmt: skip

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "assert", "warning"):
            self.events.append(f"console.{message.type}: {message.text} {message.location.get('url', '')}")

    # --- page helpers ---

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        return self.page.evaluate(expression)

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """Poll `expression` until it is truthy (navigations in between are retried). Polled from here with
        `evaluate` (the DevTools protocol's evaluation, which the pages' Content-Security-Policy allows), not with
        Playwright's `wait_for_function`, whose in-page polling compiles the string and is refused by `script-src
        'self'`."""
        from playwright.sync_api import Error

        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except Error:
                pass  # the execution context is being replaced by a navigation
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def open(self, url: str, browser_page: bool = True) -> None:
        """Navigate and wait for the load (and, on a browser page, for its data-ready flag)."""
        self.page.goto(url, wait_until="load")
        ready = " && document.body && document.body.hasAttribute('data-ready')" if browser_page else ""
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'{ready}")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the first element matching `selector` (scrolled into view)."""
        self.page.locator(selector).first.click()

    def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type `text` as keyboard input."""
        self.page.locator(selector).first.focus()
        self.page.keyboard.insert_text(text)

    def screenshot(self, path: Path) -> bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.page.screenshot(path=str(path), type="png")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads reported so far."""
        return list(self.events)

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._playwright.stop()


# --- tests ----------------------------------------------------------------------------------------------------------

CHROMIUM = find_chromium()
PLAYWRIGHT_MISSING = playwright_missing()
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium: install Debian's (apt-get install -y chromium; .ci/run does) or set NEUROTEXT_CHROMIUM",
    ),
    pytest.mark.skipif(PLAYWRIGHT_MISSING is not None, reason=PLAYWRIGHT_MISSING or ""),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from test_browser import default_settings, make_synthetic_run

    from neurotext.browser import BrowserInputs, build_browser

    inputs = make_synthetic_run(tmp_path_factory.mktemp("run"))
    out = tmp_path_factory.mktemp("site") / "browser"
    build_browser(BrowserInputs.from_files(inputs), out, default_settings(), run="synthetic")
    return out


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium(CHROMIUM)
    yield chromium
    chromium.close()


def test_index_search_neuron_page_and_screenshot(site, browser, tmp_path):
    from test_browser import EMOJI, FESTIVE, LAYERS, LONG, N_NEURONS, RTL

    index = (site / "index.html").as_uri()
    browser.open(index)
    assert browser.evaluate("document.body.getAttribute('data-ready')") == "1"
    assert browser.evaluate("document.querySelectorAll('#neurons tbody tr').length") == len(LAYERS) * N_NEURONS
    assert browser.evaluate("document.querySelector('#provenance').textContent").count("0123456789abcdef") == 1

    browser.type_into("#q", FESTIVE)  # only L1.0's summary has it
    browser.wait_for("document.querySelectorAll('#neurons tbody tr').length === 1")
    assert browser.evaluate("document.querySelector('#neurons tbody tr').dataset.neuron") == "L1.0"
    assert FESTIVE in browser.evaluate("location.hash")  # the search is in the URL

    browser.click("#neurons tbody tr a")
    browser.wait_for("location.search === '?L1.0' && document.body.getAttribute('data-ready') === '1'")
    assert browser.evaluate("document.querySelector('h1.nname').textContent") == "L1.0"

    # token highlighting: every token of the top sentences, the strongest is 'parties' of the emoji sentence
    tokens = browser.evaluate(
        "Array.from(document.querySelectorAll('#top .tok')).map(t => "
        "[t.textContent, Number(t.dataset.value), t.title, getComputedStyle(t).backgroundColor])"
    )
    assert len(tokens) > 20
    best = max(tokens, key=lambda t: t[1])
    assert best[0] == "parties" and best[1] == pytest.approx(9.0, rel=0.01) and best[2].startswith("activation 9")
    assert all(t[3] not in ("", "rgba(0, 0, 0, 0)") for t in tokens)
    first_sentence = browser.evaluate("document.querySelector('#top .text').textContent")
    assert first_sentence == EMOJI

    # escaping: the markup shows as text and never runs or loads
    page_text = browser.evaluate("document.querySelector('main').textContent")
    for literal in (
        "<script>window.__pwned = 1</script>",
        '<img src=x onerror="window.__pwned = 2">',
        '" onmouseover="window.__pwned = 3" x="',
        "entities &amp; &lt;b&gt; stay literal",
        "<b>bold</b>",
    ):
        assert literal in page_text
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('main img, main script, [onerror], [onmouseover]').length") == 0

    # right-to-left text runs right to left; a 12k-character sentence shows a window around its strongest token,
    # and all of it (wrapped inside the page) on request
    assert browser.evaluate(f"""Array.from(document.querySelectorAll('#top .text')).filter(
        e => e.textContent === {json.dumps(RTL)}).map(e => getComputedStyle(e).direction)[0]""") == "rtl"
    is_long = f"Array.from(document.querySelectorAll('#top .text')).filter(e => e.textContent === {json.dumps(LONG)})"
    assert browser.evaluate(f"{is_long}.length") == 0
    assert browser.evaluate("document.querySelectorAll('#top button.whole').length") == 1
    browser.click("#top button.whole")
    browser.wait_for(f"{is_long}.length === 1")
    assert browser.evaluate(f"{is_long}[0].querySelectorAll('.tok').length") == LONG.count(" ") + 1
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    browser.evaluate("window.scrollTo(0, 0)")

    # the other sections are there
    assert browser.evaluate("document.querySelectorAll('#histogram rect.bar').length") == 40
    assert browser.evaluate("document.querySelectorAll('#patterns table.patterns').length") == 5
    assert browser.evaluate("document.querySelectorAll('#metadata .barrow').length") == 2
    assert browser.evaluate("document.querySelectorAll('#related a.nlink').length") >= 3
    assert browser.evaluate("document.querySelectorAll('#related svg.tsne circle').length") == N_NEURONS + 1
    assert browser.evaluate("document.querySelector('#finetune') !== null")

    png = browser.screenshot(tmp_path / "neuron_page.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert browser.problems() == []


def test_empty_neuron_bad_names_and_cross_links(site, browser):
    from test_browser import EMPTY_NEURON

    browser.open((site / "neuron.html").as_uri() + f"?L1.{EMPTY_NEURON}")
    assert browser.evaluate("document.body.getAttribute('data-ready')") == "1"
    text = browser.evaluate("document.querySelector('main').textContent")
    assert "No top sentences for this neuron." in text and "too few top sentences" in text

    browser.open((site / "neuron.html").as_uri() + "?L9.1")
    assert browser.evaluate("document.body.getAttribute('data-ready')") == "error"
    assert "Layer 9 is not in this run." in browser.evaluate("document.querySelector('main').textContent")

    browser.open((site / "neuron.html").as_uri() + "?%3Cscript%3E")
    assert browser.evaluate("document.body.getAttribute('data-ready')") == "error"

    browser.open((site / "index.html").as_uri() + "#pattern=going%20be&layer=2")
    rows = browser.evaluate("Array.from(document.querySelectorAll('#neurons tbody tr')).map(r => r.dataset.neuron)")
    assert rows == [f"L2.{n}" for n in range(6) if n != EMPTY_NEURON]
    shown = "Array.from(document.querySelectorAll('#neurons tbody tr')).map(r => r.dataset.neuron)"
    for domain, want in (("twitter", ["L2.0", "L2.2", "L2.3", "L2.4"]), ("book", ["L2.1"])):  # L2.5: no domain
        select = f"const s = document.querySelector('#domain'); s.value = '{domain}';"
        browser.evaluate(f"(() => {{ {select} s.dispatchEvent(new Event('change')); }})()")
        assert browser.evaluate(shown) == want and f"domain={domain}" in browser.evaluate("location.hash")
    assert browser.problems() == []


if __name__ == "__main__":  # python tests/test_browser_chromium.py URL OUT.png [WIDTH HEIGHT]
    url, out = sys.argv[1], Path(sys.argv[2])
    size = [int(x) for x in sys.argv[3:5]] or [1200, 900]
    chromium = Chromium(find_chromium() or "chromium", *size)
    try:
        chromium.open(url, browser_page="/browser/" in url)
        time.sleep(1.0)
        chromium.screenshot(out)
        print(f"{out}: {out.stat().st_size} bytes; problems: {chromium.problems() or 'none'}")
    finally:
        chromium.close()
