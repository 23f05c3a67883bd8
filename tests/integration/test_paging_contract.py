"""The dashboard's paging ports, the same tests against the fakes and the real adapters on Azurite:
RunPages.runs_before (a page of runs from a cursor, newest first) and BlobPages.blob_page (a page of the
watched container from Storage's own continuation marker)."""

from __future__ import annotations

import random

from tests.integration.conftest import BlobWorld
from tests.integration.test_state_contract import make_run
from transfer.domain.ports import StateStore
from transfer.domain.runs import RunKind


def test_runs_page_from_a_cursor_newest_first(state_store: StateStore) -> None:
    runs = [make_run(n, kind=RunKind.IMPORT if n % 3 == 0 else RunKind.EXPORT) for n in range(11)]
    for run in random.Random(5).sample(runs, len(runs)):
        state_store.add_run(run)
    newest_first = [r.id for r in sorted(runs, key=lambda r: r.created_at, reverse=True)]
    pages, before = [], None
    while True:
        page = state_store.runs_before(before, 4)
        pages.append([r.id for r in page])
        if len(page) < 4:
            break
        before = page[-1].id
    assert pages == [newest_first[0:4], newest_first[4:8], newest_first[8:11]]
    assert all(r.etag for r in state_store.runs_before(None, 2))
    assert state_store.runs_before(newest_first[-1], 4) == []
    assert state_store.runs_before(None, 0) == []


def test_blob_pages_follow_the_listings_marker(blob_world: BlobWorld) -> None:
    names = [f"export-{n:02d}" for n in range(5)] + ["<img src=x onerror=alert(1)>", "ünïcödé"]
    for name in names:
        blob_world.setup.put(name, name.encode(), {"category": "acr-transfer-blob"})
    listed, marker, pages = [], None, 0
    while True:
        page, marker = blob_world.store.blob_page(marker, 3)
        pages += 1
        assert len(page) <= 3
        listed += [blob.name for blob in page]
        if marker is None:
            break
    assert listed == sorted(names)  # by name, each once
    assert pages == 3
    assert all(
        blob.metadata == {"category": "acr-transfer-blob"} for blob in blob_world.store.blob_page(None, 7)[0]
    )
    assert blob_world.store.blob_page(None, 7)[1] is None
