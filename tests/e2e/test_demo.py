"""`make demo`'s scenario as a test, so the demo cannot rot: it fails on the first step that misbehaves.
At its end, with the stack still up, headless Chromium loads each side's GET /api/dashboard over HTTP and
the tests check what a person sees there; the screenshots are saved beside the test's output."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from demo import devserver, scenario
from demo import stack as demo_stack
from tests import browser
from transfer.domain import naming
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

HOSTILE_BLOB = "<img src=x onerror=\"window.pwned='blob'\">"
HOSTILE_ERROR = "</script><script>window.pwned='error'</script><b>bold</b>"
HOSTILE_HINT = "<svg onload=\"window.pwned='hint'\">"


@dataclass
class Seen:
    """What the browser showed of each side, read while the demo's stack was up."""

    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    screenshots: dict[str, Path] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    html: dict[str, str] = field(default_factory=dict)


@dataclass
class Demo:
    lines: list[str]
    seen: Seen
    written: Path


class Serving:
    """One side's HTTP API on a free local port, as `make serve` serves it (demo/devserver.py)."""

    def __init__(self, side: scenario.Side, app: Any) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), devserver._handler(side, app))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/dashboard"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# What a person sees, read from the rendered page (the DOM after parsing and scripts, and the layout).
LOOK = """(() => {
  const text = (el) => el ? el.innerText : null;
  const failure = document.querySelector('tr.failure');
  const bars = [...document.querySelectorAll('tr.blob')].map((row) => {
    const bar = row.querySelector('svg.age rect.bar').getBoundingClientRect();
    const margin = row.querySelector('svg.age line.margin').getBoundingClientRect();
    return {name: row.querySelector('.name').innerText, state: row.querySelector('svg.age').dataset.state,
            barRight: bar.right, marginX: margin.left, visible: bar.width > 0 && bar.height > 0};
  });
  return {
    title: document.title,
    contentType: document.contentType,
    failure: failure ? {text: failure.innerText, cause: text(failure.querySelector('b')),
                        hint: text(failure.querySelector('.hint'))} : null,
    bars: bars,
    verificationFailed: [...document.querySelectorAll('tr.verification[data-verification=failed]')]
        .map((row) => row.innerText),
    countdown: text(document.querySelector('.sas .countdown')),
    nextExport: text(document.querySelector('.next-export')),
    images: document.querySelectorAll('img').length,
    scripts: document.querySelectorAll('script').length,
    bold: document.querySelectorAll('b').length && [...document.querySelectorAll('b')]
        .some((b) => b.innerText === 'bold'),
    pwned: window.pwned || null,
    body: document.body.innerText,
  };
})()"""


def _hostile(stack: demo_stack.Stack, target: scenario.Side) -> None:
    """A blob with a hostile name in the watched container, and a failed run whose error and hint are
    markup, recorded in the target side's Table Storage as reconcile would record them."""
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(
        stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER
    )
    container.upload_blob(
        HOSTILE_BLOB, b"hostile", metadata={"category": "acr-transfer-blob"}, overwrite=True
    )
    now = target.clock()
    run_id = naming.run_id(RunKind.IMPORT, now - timedelta(seconds=1), "b0b0b0")
    target.ports.state.add_run(
        Run(
            id=run_id,
            kind=RunKind.IMPORT,
            trigger=Trigger.HTTP,
            status=RunStatus.FAILED,
            created_at=now,
            updated_at=now,
            request_id="hostile",
            deployment_name=naming.deployment_name(run_id),
            blob=HOSTILE_BLOB,
            error=HOSTILE_ERROR,
            error_cause="<i>Cause</i>",
            hint=HOSTILE_HINT,
            finished_at=now,
        )
    )


def _look(stack: demo_stack.Stack, sides: list[scenario.Side], seen: Seen, folder: Path) -> None:
    app = scenario._function_app()
    seen.secrets = [*stack.keys.values(), *(stack.connection_string(a) for a in stack.keys)]
    with browser.Browser(width=1280, height=1000) as chromium:
        for side in sides:
            serving = Serving(side, app)
            try:
                chromium.open(serving.url)
                seen.pages[side.name] = chromium.evaluate(LOOK)
                seen.html[side.name] = chromium.evaluate("document.documentElement.outerHTML")
                seen.screenshots[side.name] = chromium.screenshot(folder / f"{side.name}-dashboard.png")
            finally:
                serving.close()
        _hostile(stack, sides[1])
        serving = Serving(sides[1], app)
        try:
            chromium.open(serving.url)
            seen.pages["hostile"] = chromium.evaluate(LOOK)
            seen.screenshots["hostile"] = chromium.screenshot(folder / "hostile-dashboard.png")
        finally:
            serving.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    if browser.available() is None:
        pytest.fail("no chromium: make installs Debian's chromium package (apt-get install -y chromium)")
    folder = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    seen = Seen()
    scenario.run(
        out=lines.append,
        run_seconds=0.2,
        dashboards=folder / "written",
        finale=lambda stack, source, target: _look(stack, [source, target], seen, folder),
    )
    print(f"dashboard screenshots: {', '.join(str(p) for p in seen.screenshots.values())}")
    return Demo(lines, seen, folder / "written")


def test_the_demo_story_runs_end_to_end(demo: Demo) -> None:
    lines = demo.lines
    assert lines[-1].strip() == "The demo finished: every step did what it should."
    assert sum(line.startswith("   ok:") for line in lines) >= 30
    assert not any("SUPERSECRET" in line or "sig=" in line for line in lines)


def test_the_demo_ends_by_writing_both_dashboards_and_saying_where(demo: Demo) -> None:
    for name in ("source", "target"):
        path = demo.written / f"{name}-dashboard.html"
        assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        assert any(path.resolve().as_uri() in line for line in demo.lines)


def test_the_source_dashboard_shows_the_failed_export_and_its_hint(demo: Demo) -> None:
    page = demo.seen.pages["source"]
    assert page["contentType"] == "text/html"  # served as a page, as make serve serves it
    assert page["failure"] is not None, page["body"][:2000]
    assert "samples/missing" in page["failure"]["text"]
    assert page["failure"]["cause"] == "ArtifactMissing"
    assert page["failure"]["hint"]
    assert page["failure"]["hint"] != "see the error"
    assert page["countdown"].startswith("in ")  # the export pipeline's SAS, ticking
    assert "team/*:v1.*" in demo.seen.pages["source"]["body"]
    assert page["nextExport"]
    assert "fires next at" in page["nextExport"]
    assert demo.seen.screenshots["source"].stat().st_size > 10_000


def test_the_target_dashboard_shows_aged_blobs_past_the_margin_and_a_failed_verification(demo: Demo) -> None:
    page = demo.seen.pages["target"]
    aged = [bar for bar in page["bars"] if bar["state"] in ("past-margin", "past-window")]
    assert aged, page["bars"]
    for bar in aged:  # as drawn: the bar reaches past the margin's line
        assert bar["visible"]
        assert bar["barRight"] > bar["marginX"]
    assert page["verificationFailed"], page["body"][:3000]
    assert any("skipped" in row or "not" in row for row in page["verificationFailed"])
    assert demo.seen.screenshots["target"].stat().st_size > 10_000


def test_no_secret_of_the_stack_is_on_either_page(demo: Demo) -> None:
    for name, html in demo.seen.html.items():
        for secret in demo.seen.secrets:
            assert secret not in html, name
        assert "sig=" not in html.replace("sig=***", "")


def test_a_hostile_blob_name_error_and_hint_stay_text_in_the_browser(demo: Demo) -> None:
    page = demo.seen.pages["hostile"]
    assert page["pwned"] is None
    assert page["images"] == 0
    assert page["scripts"] == 1  # the page's own countdown only
    assert not page["bold"]
    assert HOSTILE_BLOB in page["body"]  # shown as the text it is, in the container and on its run
    assert "</script><script>window.pwned='error'</script><b>bold</b>" in page["body"]
    assert HOSTILE_HINT in page["body"]
    assert any(bar["name"] == HOSTILE_BLOB for bar in page["bars"])
    assert json.dumps(page["title"]).startswith('"ACR Transfer')
