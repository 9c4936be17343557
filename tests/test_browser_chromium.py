"""The browser in a real browser: headless Chromium (Debian's `chromium`, no download) opens the synthetic run's
index from file://, searches, clicks through to a neuron page, checks the highlighted tokens, the escaping and the
layout of awkward text, saves a screenshot, and fails on any console error, exception or failed load.

Chromium is driven over its DevTools protocol through `--remote-debugging-pipe` (NUL-terminated JSON on file
descriptors 3 and 4): no websocket library, no driver binary, nothing but the standard library. `.ci/run` installs
Chromium (`apt-get install -y chromium`); without it these tests skip and say so. Set NEUROTEXT_CHROMIUM to use
another binary.

Run as a script to photograph any page: ``python tests/test_browser_chromium.py URL OUT.png [WIDTH HEIGHT]``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars")  # fmt: skip


def find_chromium() -> str | None:
    """NEUROTEXT_CHROMIUM, else `chromium` / `chromium-browser` on PATH, else None."""
    explicit = os.environ.get("NEUROTEXT_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CDPError(RuntimeError):
    """Chromium answered a DevTools command with an error, or stopped answering."""


class Chromium:
    """A headless Chromium with one page, driven over the DevTools protocol on a pipe.

    `events` collects every event Chromium sent (console calls, exceptions, log entries, page events).
    """

    def __init__(self, binary: str, width: int = 1200, height: int = 900) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="neurotext-chromium-"))
        to_child_read, self._to_child = os.pipe()
        self._from_child, from_child_write = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4; bash maps our pipe ends onto them.
        child_in = fcntl.fcntl(to_child_read, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_child_write, fcntl.F_DUPFD, 10)
        os.close(to_child_read)
        os.close(from_child_write)
        args = [binary, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "about:blank"]  # fmt: skip
        self._stderr = open(self.profile / "stderr.txt", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{child_in} 4>&{child_out}', *args],
            pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
        )  # fmt: skip
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""
        targets = self.send("Target.getTargets", session=None)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                 session=None)["sessionId"]  # fmt: skip
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip

    # --- protocol ---

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = "", timeout: float = 30):
        """Send one command (to the page's session unless `session` is None) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session or self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise CDPError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"no answer from Chromium; its stderr: {self.stderr_tail()}")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise CDPError(f"Chromium closed the pipe; its stderr: {self.stderr_tail()}")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def stderr_tail(self) -> str:
        try:
            return (self.profile / "stderr.txt").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # --- page helpers ---

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})  # fmt: skip
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """Poll `expression` until it is truthy (navigations in between are retried)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except CDPError:
                pass  # the execution context is being replaced by a navigation
            if time.monotonic() > deadline:
                raise CDPError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def open(self, url: str, browser_page: bool = True) -> None:
        """Navigate and wait for the load (and, on a browser page, for its data-ready flag)."""
        self.send("Page.navigate", {"url": url})
        ready = " && document.body && document.body.hasAttribute('data-ready')" if browser_page else ""
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'{ready}")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the first element matching `selector`."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})  # fmt: skip

    def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type `text` as keyboard input."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads reported so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                out.append(
                    f"log {params['entry']['level']}: {params['entry'].get('text')} {params['entry'].get('url')}"
                )
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", session=None, timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        self._stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# --- tests ----------------------------------------------------------------------------------------------------------

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium: install Debian's (apt-get install -y chromium; .ci/run does) or set NEUROTEXT_CHROMIUM",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from test_browser import make_synthetic_run

    from neurotext.browser import BrowserInputs, build_browser

    inputs = make_synthetic_run(tmp_path_factory.mktemp("run"))
    out = tmp_path_factory.mktemp("site") / "browser"
    build_browser(BrowserInputs.from_files(inputs), out, run="synthetic")
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
