"""What an export request exports: selectors expanded through the source registry's data plane, and, for
an incremental export, every tag left out whose digest the export ledger already holds.

- Exact references pass through as given (no data-plane call at all for a plain export of them).
- A selector (`team/*:v1.*`) becomes the `repo:tag` references of every matching tag with its digest,
  repositories by name, tags by name; a repository pattern without wildcards lists no catalog. Matched
  artifacts beyond `TRANSFER_EXPORT_MAX_ARTIFACTS` refuse the request (the listing stops there).
- A selector that matches nothing refuses the request (`strict`, HTTP and CLI: a 400 naming it) or is
  reported in `unmatched` (the schedule, which exports the rest and logs it).
- Incremental: the digests of exact `repo:tag` references are read too (a registry that refuses the
  app's identity leaves them in, exported as before, with a warning in the log); a tag whose digest equals
  the ledger's is `skipped`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from transfer.domain.errors import InvalidInput, NotConfigured, TransferError
from transfer.domain.ports import ExportLedger, Registry
from transfer.domain.records import LedgerEntry
from transfer.domain.references import split_reference
from transfer.domain.referrers import Referrer, group_split
from transfer.domain.selectors import Selector, is_selector, matching_repositories, matching_tags
from transfer.domain.settings import Settings
from transfer.service.memory import WorkerMemory
from transfer.service.preflight import Preflight
from transfer.service.referrers import DiscoverReferrers

log = logging.getLogger("transfer")

LEDGER_READERS = 4


def ledger_key(artifact: str) -> tuple[str, str]:
    """(repository, reference) of an artifact in the export ledger: the tag, or `@sha256:...`."""
    repository, tag, digest = split_reference(artifact)
    return repository, tag if tag is not None else f"@{digest}"


@dataclass(frozen=True)
class Selection:
    artifacts: tuple[str, ...]  # to export, in order (each image followed by its referrers)
    digests: dict[str, str] = field(default_factory=dict)  # artifact -> digest read now, where known
    skipped: tuple[str, ...] = ()  # unchanged since a succeeded export (incremental)
    unmatched: tuple[str, ...] = ()  # selectors that matched nothing (not strict)
    referrers: dict[str, Referrer] = field(default_factory=dict)  # referrer artifact -> what it is
    groups: tuple[tuple[str, ...], ...] = ()  # the artifacts, an image with its referrers in one group

    def runs(self, size: int) -> list[tuple[str, ...]]:
        """The artifacts in runs of at most `size`, an image and its referrers together where they fit."""
        return group_split(self.groups or [(a,) for a in self.artifacts], size)

    def referrers_of(self, chunk: Sequence[str]) -> tuple[tuple[str, str, str], ...]:
        """What a run of `chunk` records of its referrers: (artifact, artifact type, subject)."""
        found = (self.referrers.get(a) for a in chunk)
        return tuple((r.artifact, r.artifact_type or "", r.subject) for r in found if r is not None)


class Selecting:
    def __init__(
        self,
        settings: Settings,
        registry: Registry | None,
        ledger: ExportLedger,
        discover: DiscoverReferrers | None = None,
        *,
        memory: WorkerMemory | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.ledger = ledger
        self.memory = memory or WorkerMemory()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.discover = (
            discover if discover is not None else DiscoverReferrers(settings.export_referrers, registry)
        )

    def _registry(self) -> Registry:
        if self.registry is None:
            raise NotConfigured("this instance reads no registry data plane (TRANSFER_REGISTRY_ENDPOINT)")
        return self.registry

    def select(
        self,
        items: Sequence[str],
        *,
        incremental: bool,
        strict: bool,
        requested: Sequence[Any] = (),
        target: str = "artifacts",
    ) -> Selection:
        """`items` are parsed references and selectors (artifacts.parse_artifacts); `requested` is the
        list as given, so that an error names the selector's index in it."""
        referring = self.discover.enabled
        preflight = self.registry is not None
        if not (incremental or referring or preflight) and not any(is_selector(item) for item in items):
            return Selection(tuple(items))
        # The ledgers (what an incremental export leaves out, what the pre-flight need not read again) are
        # read while the registry lists the catalog and the tags.
        reading = incremental or preflight
        with ThreadPoolExecutor(max_workers=LEDGER_READERS) if reading else nullcontext() as pool:
            ledgers = _Ledgers(self.ledger, pool)
            chosen, digests, unmatched = self._expand(items, strict, requested, target, ledgers)
            self._read_exact_digests(chosen, digests)
            skipped = self._unchanged(chosen, digests, ledgers) if incremental else []
            groups, referrers = self._referrers(chosen, digests, ledgers if incremental else None)
            left_out = self._preflight(chosen, digests, skipped, ledgers, strict, requested, target)
        groups = [group for group in groups if group[0] not in left_out]
        return _selection(groups, digests, skipped, unmatched, referrers)

    def travelling(self, images: Sequence[tuple[str, str]]) -> Selection:
        """Images whose digests are known already (pushed ones): each followed by its referrers that
        travel and the export ledger does not hold, and the pre-flight applied as for the schedule (an
        image refused is left out, logged and remembered for health; never an error)."""
        digests = dict(images)
        chosen = list(digests)
        ledgers = _Ledgers(self.ledger, None)
        groups, referrers = self._referrers(chosen, digests, ledgers)
        left_out = self._preflight(chosen, digests, [], ledgers, False, (), "artifacts")
        groups = [group for group in groups if group[0] not in left_out]
        return _selection(groups, digests, [], [], referrers)

    def _preflight(
        self,
        chosen: list[str],
        digests: dict[str, str],
        skipped: list[str],
        ledgers: _Ledgers,
        strict: bool,
        requested: Sequence[Any],
        target: str,
    ) -> set[str]:
        """The images refused (a layer over 8 GB): a request is refused naming the first, the schedule
        leaves them out; foreign layers are flagged. Logged, and shown by health."""
        if self.registry is None:
            return set()
        left = set(skipped)
        images = [(a, digests[a]) for a in chosen if a in digests and a not in left]
        try:
            verdict = Preflight(self.registry)(images, ledgers.holds)
        except TransferError as exc:
            log.warning("export without pre-flight: %s", exc.message)
            return set()
        now = self.clock()
        for artifact, why in {**verdict.flagged, **verdict.refused}.items():
            self.memory.preflight[artifact] = (now, why)
            log.warning("pre-flight: %s: %s", artifact, why, extra={"event": "export.preflight"})
        if strict and verdict.refused:
            artifact, why = next(iter(verdict.refused.items()))
            index = next((i for i, raw in enumerate(requested) if raw == artifact), None)
            raise InvalidInput(
                f"{artifact}: {why}", target=f"{target}[{index}]" if index is not None else target
            )
        return set(verdict.refused)

    def _referrers(
        self, chosen: list[str], digests: dict[str, str], ledgers: _Ledgers | None
    ) -> tuple[list[tuple[str, ...]], dict[str, Referrer]]:
        """Each chosen image followed by its referrers that travel (discover.py); an incremental export
        leaves out those the ledger holds (exported before), so a signature added later travels alone."""
        if not self.discover.enabled:
            return [(a,) for a in chosen], {}
        subjects = [(a, digests[a]) for a in chosen if a in digests]
        try:
            discovery = self.discover(subjects)
        except TransferError as exc:
            log.warning("export without referrers: %s", exc.message)
            return [(a,) for a in chosen], {}
        found = discovery.found
        if discovery.unchecked:
            log.warning(
                "referrers of %d images not looked for (%s): they go without them; the next incremental "
                "export looks again",
                len(discovery.unchecked),
                discovery.stopped,
                extra={"event": "export.referrers_unchecked"},
            )
        referrers: dict[str, Referrer] = {}
        groups = []
        for artifact in chosen:
            group = [artifact]
            for referrer in found.get(artifact, []):
                if referrer.artifact in referrers or referrer.artifact in chosen:
                    continue
                repository, reference = ledger_key(referrer.artifact)
                if ledgers is not None and reference in ledgers.of(repository):
                    continue
                referrers[referrer.artifact] = referrer
                digests[referrer.artifact] = referrer.digest
                group.append(referrer.artifact)
            groups.append(tuple(group))
        return groups, referrers

    def _expand(
        self, items: Sequence[str], strict: bool, requested: Sequence[Any], target: str, ledgers: _Ledgers
    ) -> tuple[list[str], dict[str, str], list[str]]:
        expansion = _Expansion(self._registry, ledgers, self.settings.export_max_artifacts, target)
        unmatched: list[str] = []
        for item in items:
            if not is_selector(item):
                expansion.chosen.setdefault(item, None)
            elif not expansion.expand(Selector.parse(item)):
                if strict:
                    index = next((i for i, raw in enumerate(requested) if raw == item), None)
                    raise InvalidInput(
                        f"{item!r} matches no tag in registry {self.settings.registry}",
                        target=f"{target}[{index}]" if index is not None else target,
                    )
                unmatched.append(item)
        return list(expansion.chosen), expansion.digests, unmatched

    def _read_exact_digests(self, chosen: list[str], digests: dict[str, str]) -> None:
        """The digest of every chosen artifact not known yet: a digest reference's own, a tag's from the
        data plane (best effort: a registry that refuses access leaves them unknown, so exported)."""
        registry = None
        for artifact in chosen:
            if artifact in digests:
                continue
            repository, tag, digest = split_reference(artifact)
            if digest is not None:
                digests[artifact] = digest
                continue
            assert tag is not None
            if registry is None:
                registry = self._registry()
            try:
                found = registry.digest(repository, tag)
            except TransferError as exc:  # refused or unreachable: exported as given, unchecked
                log.warning(
                    "exact references are exported without reading their digests (no incremental "
                    "comparison, referrers or pre-flight for them): %s",
                    exc.message,
                )
                return
            if found is not None:
                digests[artifact] = found

    def _unchanged(self, chosen: list[str], digests: dict[str, str], ledgers: _Ledgers) -> list[str]:
        known = [
            (artifact, digests[artifact], *ledger_key(artifact)) for artifact in chosen if artifact in digests
        ]
        skipped = []
        for artifact, digest, repository, reference in known:
            entry = ledgers.of(repository).get(reference)
            if entry is not None and entry.digest == digest:
                skipped.append(artifact)
        return skipped


def _selection(
    groups: list[tuple[str, ...]],
    digests: dict[str, str],
    skipped: list[str],
    unmatched: list[str],
    referrers: dict[str, Referrer],
) -> Selection:
    """The groups without the skipped artifacts (a skipped image's new referrers still travel)."""
    left_out = set(skipped)
    kept = [rest for group in groups if (rest := tuple(a for a in group if a not in left_out))]
    chosen = tuple(a for group in kept for a in group)
    return Selection(chosen, digests, tuple(skipped), tuple(unmatched), referrers, tuple(kept))


class _Ledgers:
    """The export ledgers of the repositories a request touches, each read once, in the background as soon
    as it is known: every repository under a selector's prefix in one read (`cover`), any other repository
    on its own (`prefetch`). Without a pool (not incremental), nothing is read before it is asked for."""

    def __init__(self, ledger: ExportLedger, pool: ThreadPoolExecutor | None) -> None:
        self.ledger = ledger
        self.pool = pool
        self.covered: dict[str, Future[dict[str, dict[str, LedgerEntry]]]] = {}
        self.reads: dict[str, Future[dict[str, LedgerEntry]]] = {}

    def cover(self, prefix: str) -> None:
        if self.pool is not None and self._covering(prefix) is None:
            self.covered[prefix] = self.pool.submit(self.ledger.exported_under, prefix)

    def prefetch(self, repository: str) -> None:
        if self.pool is not None and repository not in self.reads and self._covering(repository) is None:
            self.reads[repository] = self.pool.submit(self.ledger.exported, repository)

    def holds(self, repository: str, digest: str) -> bool:
        """A run that succeeded exported `digest` from `repository` (under any tag, or by digest)."""
        return any(entry.digest == digest for entry in self.of(repository).values())

    def of(self, repository: str) -> dict[str, LedgerEntry]:
        covering = self._covering(repository)
        if covering is not None:
            return covering.result().get(repository, {})
        read = self.reads.get(repository)
        return read.result() if read is not None else self.ledger.exported(repository)

    def _covering(self, name: str) -> Future[dict[str, dict[str, LedgerEntry]]] | None:
        return next((read for prefix, read in self.covered.items() if name.startswith(prefix)), None)


class _Expansion:
    """The artifacts selectors expand to, in order, with their digests: the catalog listed once, each
    repository's tags once, at most `cap` artifacts (more refuses the request)."""

    def __init__(self, registry: Callable[[], Registry], ledgers: _Ledgers, cap: int, target: str) -> None:
        self.registry = registry
        self.ledgers = ledgers
        self.cap = cap
        self.target = target
        self.chosen: dict[str, None] = {}
        self.digests: dict[str, str] = {}
        self.expanded = 0
        self.catalog: list[str] | None = None
        self.listed: dict[str, list[tuple[str, str]]] = {}

    def expand(self, selector: Selector) -> int:
        """Add what `selector` matches; how many tags it matched (those chosen already included)."""
        matched = 0
        for repository in self._repositories(selector):
            for match in matching_tags(selector, repository, self._tags(repository)):
                matched += 1
                self.digests.setdefault(match.artifact, match.digest)
                if match.artifact not in self.chosen:
                    self._choose(match.artifact)
        return matched

    def _repositories(self, selector: Selector) -> list[str]:
        registry = self.registry()
        if selector.literal_repository is not None:
            return [selector.literal_repository]
        self.ledgers.cover(selector.repository_prefix)
        if self.catalog is None:
            self.catalog = list(registry.repositories())
        return matching_repositories(selector, self.catalog)

    def _tags(self, repository: str) -> list[tuple[str, str]]:
        if repository not in self.listed:
            self.ledgers.prefetch(repository)
            self.listed[repository] = [(t.name, t.digest) for t in self.registry().tags(repository)]
        return self.listed[repository]

    def _choose(self, artifact: str) -> None:
        self.chosen[artifact] = None
        self.expanded += 1
        if self.expanded > self.cap:
            raise InvalidInput(
                f"the selectors match more than {self.cap} artifacts (TRANSFER_EXPORT_MAX_ARTIFACTS): "
                "narrow them, or raise the setting",
                target=self.target,
            )
