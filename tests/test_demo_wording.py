"""The demo's words: a wait is printed as a wait (how long, for what), never as a check; a cut text ends
between words with an ellipsis."""

from __future__ import annotations

import pytest

from demo import scenario


def test_a_wait_is_printed_as_a_wait_with_its_duration() -> None:
    printed: list[str] = []
    story = scenario.Story(printed.append)
    answers = iter([False, True])
    scenario._wait(story, lambda: next(answers), "the source trigger to import it")
    [line] = printed
    assert line.startswith("   waited ")
    assert line.endswith(" s for the source trigger to import it")
    assert "ok:" not in line


def test_a_wait_that_times_out_says_what_it_waited_for() -> None:
    story = scenario.Story(lambda _: None)
    with pytest.raises(scenario.DemoFailure, match="timed out after 0 s waiting for the blob"):
        scenario._wait(story, lambda: False, "the blob", timeout=0)


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("short enough", 80, "short enough"),
        ("Storage refused the pipeline: check the SAS expiry", 30, "Storage refused the …"),
        ("x" * 100, 20, " …"),
    ],
)
def test_clip_cuts_between_words_with_an_ellipsis(text: str, width: int, expected: str) -> None:
    clipped = scenario.clip(text, width)
    assert len(clipped) <= width
    if clipped != text:
        assert clipped.endswith("…")
    assert clipped.strip() == expected.strip()
