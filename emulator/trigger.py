"""The import pipelines' source trigger: a background loop that lists each watched container and imports
every new or re-written blob once per version (name + ETag), when it meets every documented condition:
Last-Modified within the window (60 days) of the emulator's clock, a Content-MD5, metadata
category=acr-transfer-blob, and list permission on the container."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError

from emulator import ids, transfer_blob
from emulator.acr import IMPORT_PIPELINES, PipelineRuns
from emulator.clock import Clock
from emulator.resources import ResourceManager
from emulator.runner import RunFailed, Runner, storage_echo
from emulator.store import Config, Resource, State

log = logging.getLogger("emulator.trigger")


class SourceTrigger:
    def __init__(
        self,
        state: State,
        config: Config,
        clock: Clock,
        resources: ResourceManager,
        runs: PipelineRuns,
        runner: Runner,
        stop: threading.Event,
    ) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.resources = resources
        self.runs = runs
        self.runner = runner
        self.stop = stop
        self.thread = threading.Thread(target=self._loop, name="source-trigger", daemon=True)
        self.wake = threading.Event()

    def start(self) -> None:
        self.thread.start()

    def poke(self) -> None:
        """Scan now instead of at the next interval (e.g. after the clock moved)."""
        self.wake.set()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.scan()
            except Exception:
                log.exception("source trigger scan failed")
            self.wake.wait(self.config.trigger_interval)
            self.wake.clear()

    def eligible(self, blob: Any) -> bool:
        window = timedelta(days=self.config.source_trigger_window_days)
        recent = blob.last_modified is not None and blob.last_modified >= self.clock.now() - window
        has_md5 = bool(blob.content_settings and blob.content_settings.content_md5)
        category = (blob.metadata or {}).get("category") == transfer_blob.CATEGORY
        return recent and has_md5 and category

    def scan(self) -> None:
        for pipeline in self.resources.by_type(IMPORT_PIPELINES):
            if self.stop.is_set():
                return
            status = (pipeline.body["properties"].get("trigger") or {}).get("sourceTrigger", {}).get("status")
            if status == "Enabled":
                self._scan_pipeline(pipeline)

    def _scan_pipeline(self, pipeline: Resource) -> None:
        endpoint = self.runner.endpoint(pipeline.body)
        try:
            client, _ = self.runner.container(endpoint)
            blobs = list(client.list_blobs(include=["metadata"]))
        except (RunFailed, HttpResponseError):
            return  # no access (yet): the real trigger cannot list either; try again next time
        pipeline_key = ids.key(pipeline.id)
        for blob in blobs:
            version = (pipeline_key, blob.name, str(blob.etag))
            with self.state.lock:
                if version in self.state.seen_blobs or not self.eligible(blob):
                    continue
                if self.resources.find(pipeline.id) is None:
                    return
                self.state.seen_blobs.add(version)
            run = self.runs.trigger_run(pipeline, blob.name, storage_echo(endpoint))
            log.info("source trigger: run %s imports blob %s", run.id, blob.name)
