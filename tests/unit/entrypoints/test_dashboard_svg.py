"""The dashboard's markup pieces: escaping with secrets scrubbed, the age bar against the window and its
margin, the countdown, and the one script the page's Content-Security-Policy allows."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from transfer.entrypoints.dashboard_svg import COUNTDOWN_SCRIPT, CSP, age_bar, countdown, e, q, span

WINDOW, MARGIN = timedelta(days=60), timedelta(hours=24)


def test_text_is_escaped_for_elements_and_attributes() -> None:
    assert e('<img src=x onerror="a()">') == "&lt;img src=x onerror=&quot;a()&quot;&gt;"
    assert e("</script>'") == "&lt;/script&gt;&#x27;"
    assert e(None) == ""
    assert q("a b&c<") == "a%20b%26c%3C"


@pytest.mark.parametrize(
    "secret",
    [
        "https://acct.blob.core.windows.net/c?sv=2024&sig=abc%2Bdef&se=2027",
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=bXlrZXk=;EndpointSuffix=core.windows.net",
        "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0",
        "https://app/api/runs?code=FUNCTIONKEY",
    ],
)
def test_secrets_are_scrubbed_from_every_text(secret: str) -> None:
    shown = e(secret)
    for value in ("abc%2Bdef", "bXlrZXk=", "c2VjcmV0", "FUNCTIONKEY"):
        assert value not in shown
    assert "***" in shown


def test_long_text_is_cut_with_a_count() -> None:
    assert e("x" * 700).endswith("… (100 more characters)")


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (timedelta(days=10), "within"),
        (timedelta(days=59, hours=1), "past-margin"),
        (timedelta(days=75), "past-window"),
    ],
)
def test_the_age_bar_says_which_side_of_the_margin_and_the_window_it_is(age: timedelta, state: str) -> None:
    bar = age_bar(age, WINDOW, MARGIN)
    assert f'data-state="{state}"' in bar
    width = float(re.search(r'class="bar" x="0" y="2" width="([0-9.]+)"', bar).group(1))  # type: ignore[union-attr]
    margin_x = float(re.search(r'class="margin" x1="([0-9.]+)"', bar).group(1))  # type: ignore[union-attr]
    assert (width > margin_x) == (state != "within")


def test_a_blob_far_past_the_window_fills_the_bar_and_no_more() -> None:
    assert 'width="260.0"' in age_bar(timedelta(days=400), WINDOW, MARGIN)


def test_the_countdown_is_written_now_and_ticks_in_the_page() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    shown = countdown(now + timedelta(days=41, hours=3), now)
    assert ">in 41 d 3 h<" in shown
    assert 'data-expires="2027-01-06T15:00:00Z"' in shown
    assert span(timedelta(seconds=-1)) == "expired"
    assert span(timedelta(minutes=90)) == "1 h 30 min"


def test_the_policy_allows_the_countdown_script_and_nothing_else() -> None:
    digest = base64.b64encode(hashlib.sha256(COUNTDOWN_SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CSP
    assert "default-src 'none'" in CSP
    assert "unsafe-inline" not in CSP.split("script-src", 1)[1].split(";", 1)[0]
