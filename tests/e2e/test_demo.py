"""`make demo`'s scenario as a test, so the demo cannot rot: it fails on the first step that misbehaves."""

import pytest

from demo import scenario

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


@pytest.mark.parametrize("run_shape", ["spec", "response-uri", "request-name"])
def test_the_demo_story_runs_end_to_end_whatever_the_source_trigger_runs_name(run_shape: str) -> None:
    """Every import verified (passed or failed) in each shape of the source trigger's runs."""
    lines: list[str] = []
    scenario.run(out=lines.append, run_seconds=0.2, run_shape=run_shape)
    assert lines[-1].strip() == "The demo finished: every step did what it should."
    assert sum(line.startswith("   ok:") for line in lines) >= 30
    assert not any("SUPERSECRET" in line or "sig=" in line for line in lines)
