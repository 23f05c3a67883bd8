"""GET /api/dashboard through function_app: an HTML page, escaped everywhere, with no secret on it, paging
by query parameters, bad parameters refused as 400 before anything is read."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html.parser import HTMLParser

import azure.functions as func
import pytest

import function_app
from tests.conftest import COPY_SAS, World, sas_copy_world
from transfer import bootstrap
from transfer.domain.runs import Trigger
from transfer.entrypoints.dashboard_svg import CSP

KEY = "FUNCTIONKEYSECRET"
HOSTILE_BLOB = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_ERROR = "</script><script>document.title='pwned'</script> sig=LEAKEDSIGNATURE AccountKey=LEAKEDKEY=="


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


class Elements(HTMLParser):
    """Every element and the page's text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def page(world: World, **params: str) -> tuple[int, str, func.HttpResponse]:
    request = func.HttpRequest(
        "GET", f"https://app.example/api/dashboard?code={KEY}", params={"code": KEY, **params}, body=b""
    )
    with bootstrap.use_service(world.service):
        response = function_app.dashboard(request)
    return response.status_code, response.get_body().decode(), response


def hostile_world(world: World) -> None:
    [run] = world.service.start_export(["team/api:v1"], Trigger.CLI).runs
    world.finish(run, "Failed", error=HOSTILE_ERROR)
    world.service.reconcile()
    world.put_blob(HOSTILE_BLOB, age=timedelta(days=65))


def test_the_page_is_html_with_its_own_content_security_policy(world: World) -> None:
    status, body, response = page(world)
    assert status == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    assert body.startswith("<!DOCTYPE html>")
    parsed = Elements()
    parsed.feed(body)
    # nothing from elsewhere: no external script, style, image or font (the page works in an isolated network)
    for tag, attrs in parsed.tags:
        assert not (attrs.get("src") or "").strip(), (tag, attrs)
        if tag == "link":
            raise AssertionError(f"external resource {attrs}")
    assert not re.search(r"(?i)(src|href)\s*=\s*\"?(https?:)?//(?!app\.example/)", body)


def test_a_hostile_blob_name_and_error_are_text_never_markup(world: World) -> None:
    hostile_world(world)
    status, body, _ = page(world)
    assert status == 200
    parsed = Elements()
    parsed.feed(body)
    assert [tag for tag, _ in parsed.tags].count("script") == 1  # our countdown, nothing injected
    assert not any(tag == "img" for tag, _ in parsed.tags)
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    links = [attrs.get("href") or "" for tag, attrs in parsed.tags if tag == "a"]
    assert (
        "https://app.example/api/blobs/%3Cimg%20src%3Dx%20onerror%3D%22document.title%3D%27pwned%27%22%3E"
        in links
    )
    text = "".join(parsed.text)
    assert HOSTILE_BLOB in text  # shown as the text it is
    assert "</script><script>document.title='pwned'</script>" in text


def test_no_secret_is_ever_on_the_page(world: World) -> None:
    hostile_world(world)
    _, body, _ = page(world)
    signature = re.search(r"sig=([^&]+)", COPY_SAS)
    assert signature is not None
    for secret in (signature.group(1), "LEAKEDSIGNATURE", "LEAKEDKEY", KEY, COPY_SAS):
        assert secret not in body
    assert "sig=***" in body  # the error is shown, its signature scrubbed


def test_paging_parameters_and_bad_ones(world: World) -> None:
    assert page(world, runs="20261126110000000e000001")[0] == 200
    assert page(world, blobs="blob050")[0] == 200
    for params in ({"runs": "not a run!"}, {"blobs": "a\nb"}, {"top": "5"}):
        status, body, response = page(world, **params)
        assert status == 400, body
        assert response.mimetype == "application/json"
