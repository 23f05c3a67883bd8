"""Export on push: the registry's Event Grid events read into pushes, the pushes the export selectors keep,
and when a gathered batch is due. Pure; the clock is passed in.

ACR raises `Microsoft.ContainerRegistry.ImagePushed` for every manifest pushed (`data.target.repository`,
`tag`, `digest`, `mediaType`, `size`; subject `repo:tag`), at least once, in batches, in any order. A push
is identified by repository, tag and digest, so a redelivered event, or the same tag pushed again at the
same digest, is one push.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from transfer.domain import artifacts, references
from transfer.domain.selectors import Selector, is_selector

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
# A push taken by a run whose record is still missing after this long belongs to a worker that died in
# between: far longer than a take-then-record takes in a live worker.
TAKE_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class Push:
    """One tag pushed at one digest, as the app recorded it; `run_id` once a run took it."""

    repository: str
    tag: str
    digest: str
    received_at: datetime
    event_id: str = ""
    run_id: str | None = None
    taken_at: datetime | None = None
    etag: str | None = None

    @property
    def artifact(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def key(self) -> str:
        """The push's identity: the same for every event of this tag at this digest."""
        text = f"{self.repository}:{self.tag}@{self.digest}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def taken(self, run_id: str, now: datetime) -> Push:
        return replace(self, run_id=run_id, taken_at=now)


@dataclass(frozen=True)
class Reading:
    """An event read: the push it carries, or why it starts nothing."""

    push: Push | None
    reason: str


def _ignored(reason: str) -> Reading:
    return Reading(None, reason)


def read_event(event: Mapping[str, Any], now: datetime) -> Reading:
    """The push an Event Grid event carries: only `ImagePushed` with a valid repository, tag and digest
    is one; anything else is ignored with its reason (never an error: a retry could not help)."""
    kind = event.get("eventType")
    if kind != IMAGE_PUSHED:
        return _ignored(f"event type {kind!r} is not {IMAGE_PUSHED}")
    data = event.get("data")
    target = data.get("target") if isinstance(data, Mapping) else None
    if not isinstance(target, Mapping):
        return _ignored("the event has no data.target")
    repository, tag, digest = target.get("repository"), target.get("tag"), target.get("digest")
    if not isinstance(repository, str) or not isinstance(digest, str):
        return _ignored("the event names no repository or digest")
    if not tag:
        return _ignored(f"{repository}@{digest} was pushed without a tag")
    if not isinstance(tag, str) or references.reason(f"{repository}:{tag}") is not None:
        return _ignored(f"{repository}:{tag} is not a valid reference")
    if references.reason(f"{repository}@{digest}") is not None:
        return _ignored(f"{digest!r} is not a sha256 digest")
    event_id = event.get("id")
    return Reading(
        Push(repository, tag, digest, now, event_id if isinstance(event_id, str) else ""), "a tag pushed"
    )


def selected(push: Push, selectors: Sequence[str]) -> bool:
    """Whether the export selectors (TRANSFER_EXPORT_ARTIFACTS) keep this push: a selector matching its
    repository and tag, an exact `repo:tag` (a bare `repo` means `repo:latest`), or `repo@digest`."""
    for item in selectors:
        if is_selector(item):
            selector = Selector.parse(item)
            if selector.matches_repository(push.repository) and selector.matches_tag(push.tag):
                return True
            continue
        repository, tag, digest = references.split_reference(references.normalise(item))
        if repository == push.repository and (tag == push.tag or digest == push.digest):
            return True
    return False


def due(pending: Iterable[Push], now: datetime, window: timedelta) -> bool:
    """A gathered batch starts once the window has passed since its first push not yet taken."""
    first = min((p.received_at for p in pending if p.run_id is None), default=None)
    return first is not None and now - first >= window


def batches(pushes: Sequence[Push]) -> list[tuple[Push, ...]]:
    """Runs of at most 50 artifacts, in the order pushed. A tag pushed at several digests within the window
    is one artifact (its newest digest): every push of it travels in the same run."""
    ordered = sorted(pushes, key=lambda p: (p.received_at, p.artifact))
    newest: dict[str, Push] = {p.artifact: p for p in ordered}
    chunks = artifacts.split(list(newest))
    return [tuple(p for p in ordered if p.artifact in set(chunk)) for chunk in chunks]


def ready(waiting: Sequence[Push], now: datetime, window: timedelta) -> list[tuple[Push, ...]]:
    """The batches to start now. Nothing before the window has passed since the first waiting push; then
    every full run of 50, and the last, partial one only once pushes stopped coming for a window (a
    burst longer than the window still fills whole runs) or its own first push waited two windows."""
    if not due(waiting, now, window):
        return []
    chunks = batches(waiting)
    last = chunks[-1]
    if len({p.artifact for p in last}) < artifacts.MAX_PER_RUN:
        newest = max(p.received_at for p in waiting)
        if now - newest < window and now - min(p.received_at for p in last) < 2 * window:
            chunks.pop()
    return chunks


def held_until(waiting: Sequence[Push], window: timedelta) -> datetime:
    """When `ready` starts a partial run it held: a window after the newest push, at most two windows
    after the run's own first push."""
    last = batches(waiting)[-1]
    newest = max(p.received_at for p in waiting)
    return min(newest + window, min(p.received_at for p in last) + 2 * window)


def run_digests(pushes: Sequence[Push]) -> tuple[tuple[str, str], ...]:
    """Each artifact with the digest of its newest push (what the export ledger records)."""
    newest: dict[str, str] = {}
    for push in sorted(pushes, key=lambda p: p.received_at):
        newest[push.artifact] = push.digest
    return tuple(newest.items())


def orphans(pending: Iterable[Push], now: datetime) -> dict[str, list[Push]]:
    """Pushes a run took whose starter may have died: by run id, taken longer than TAKE_GRACE ago."""
    found: dict[str, list[Push]] = {}
    for push in pending:
        if push.run_id is not None and push.taken_at is not None and now - push.taken_at > TAKE_GRACE:
            found.setdefault(push.run_id, []).append(push)
    return found
