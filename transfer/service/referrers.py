"""Discovering the referrers of images (signatures, SBOMs, attestations), recursively: a use case any
export path calls with the images it is about to export (selectors, exact references, a pushed image).

Each subject costs one ListReferrers call (a page each); nothing else is read. ACR publishes a limit of
1,000 ListReferrers calls a minute per identity: the discovery keeps under it on its own (a worker's
calls in the last minute are counted), and a 429 is waited out by its Retry-After while that fits the
discovery's time budget. Past the budget the discovery stops and says which images it did not look at:
their images are exported all the same, and the next incremental export looks again (the ledger knows
which referrers went), so a large selector is covered over a few occurrences instead of failing.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from transfer.domain.errors import NotConfigured, Throttled
from transfer.domain.ports import Registry
from transfer.domain.references import split_reference
from transfer.domain.referrers import Descriptor, Referrer, ReferrerChoice

log = logging.getLogger("transfer")

PER_MINUTE = 1000  # ACR's published ListReferrers limit per identity
BUDGET_SECONDS = 60.0  # the most one discovery waits for the registry in all
MAX_DEPTH = 8  # a signature of an SBOM of an image is depth 2
DEFAULT_WAIT = 5.0  # a 429 without Retry-After


@dataclass
class Discovery:
    """What one discovery found: per subject artifact, its referrers in discovery order (recursion
    included), and how many ListReferrers calls it made."""

    found: dict[str, list[Referrer]] = field(default_factory=dict)
    calls: int = 0
    waited: float = 0.0
    unchecked: list[str] = field(default_factory=list)  # subjects not looked at: the budget ran out
    stopped: str | None = None  # why


class DiscoverReferrers:
    def __init__(
        self,
        choice: ReferrerChoice,
        registry: Registry | None,
        *,
        per_minute: int = PER_MINUTE,
        budget: float = BUDGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.choice = choice
        self.registry = registry
        self.per_minute = per_minute
        self.budget = budget
        self.clock = clock
        self.sleep = sleep
        self.recent: deque[float] = deque()  # this worker's calls in the last minute

    @property
    def enabled(self) -> bool:
        return not self.choice.none

    def __call__(self, subjects: Sequence[tuple[str, str]]) -> Discovery:
        """The referrers that travel of each (artifact, digest) subject, recursively, each once."""
        discovery = Discovery()
        if not self.enabled or not subjects:
            return discovery
        if self.registry is None:
            raise NotConfigured("this instance reads no registry data plane (TRANSFER_REGISTRY_ENDPOINT)")
        deadline = self.clock() + self.budget
        seen: set[str] = set()
        for index, (artifact, digest) in enumerate(subjects):
            try:
                self._discover(artifact, digest, deadline, seen, discovery)
            except Throttled as exc:
                discovery.unchecked = [a for a, _ in subjects[index:]]
                discovery.stopped = exc.message
                discovery.found.pop(artifact, None)  # partly found: looked at again next time
                break
        return discovery

    def _discover(
        self, artifact: str, digest: str, deadline: float, seen: set[str], discovery: Discovery
    ) -> None:
        """The referrers of one image, recursively, into `discovery.found`."""
        assert self.registry is not None
        repository = split_reference(artifact)[0]
        found = discovery.found.setdefault(artifact, [])
        queue = [(digest, 0)]
        while queue:
            subject, depth = queue.pop(0)
            if subject in seen or depth >= MAX_DEPTH:
                continue
            seen.add(subject)
            for item in self._list(self.registry, repository, subject, deadline, discovery):
                if not self.choice.travels(item.artifact_type) or item.digest == digest:
                    continue
                found.append(Referrer(f"{repository}@{item.digest}", item.artifact_type, subject))
                queue.append((item.digest, depth + 1))

    def _list(
        self, registry: Registry, repository: str, subject: str, deadline: float, discovery: Discovery
    ) -> list[Descriptor]:
        while True:
            self._pace(deadline, discovery)
            discovery.calls += 1
            try:
                return registry.referrers(repository, subject)
            except Throttled as exc:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_WAIT
                if self.clock() + wait > deadline:
                    raise Throttled(
                        f"{exc.message}; discovering referrers would wait {wait:.0f} s, beyond its budget",
                        retry_after=wait,
                    ) from None
                log.info("referrer discovery throttled: waiting %.1f s (Retry-After)", wait)
                self._wait(wait, discovery)

    def _pace(self, deadline: float, discovery: Discovery) -> None:
        """Keep this worker under `per_minute` ListReferrers calls in any minute."""
        now = self.clock()
        while self.recent and now - self.recent[0] >= 60.0:
            self.recent.popleft()
        if len(self.recent) >= self.per_minute:
            wait = 60.0 - (now - self.recent[0])
            if now + wait > deadline:
                raise Throttled(
                    f"referrer discovery: {self.per_minute} ListReferrers calls a minute reached",
                    retry_after=wait,
                )
            self._wait(wait, discovery)
            self.recent.popleft()
        self.recent.append(self.clock())

    def _wait(self, seconds: float, discovery: Discovery) -> None:
        discovery.waited += seconds
        self.sleep(seconds)
