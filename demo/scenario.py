"""The demo's story: the real functions of both app instances driving ACR Transfer end to end.

Every step checks what it should have done and raises DemoFailure otherwise, so `make demo` (and the test
that runs this scenario) fails loudly instead of printing a happy story over a broken one.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func

from demo import dashboards as dashboard_files
from demo import on_push
from demo import stack as demo_stack
from demo.stack import Stack
from demo.supply_chain import REPOSITORIES as SUPPLY_CHAIN_REPOSITORIES
from demo.supply_chain import supply_chain
from transfer import bootstrap
from transfer.domain.runs import Run
from transfer.domain.settings import Settings, load_settings
from transfer.service import PipelineSpec, TransferService

SAMPLES = {
    "samples/hello-world": {"v1": None, "v2": None},
    "samples/nginx": {"1.27": None},
    "samples/busybox": {"1.36": None},
}
TEAM = {"team/api": {"v1.0": None, "v1.1": None, "v2.0": None}, "team/web": {"v1.0": None}}
BULK = {f"bulk/svc{i:02d}": {"v1": None} for i in range(60)}
REPOSITORIES = len(SAMPLES) + len(TEAM) + len(BULK)
BASE = "http://localhost:7071/api"


class DemoFailure(Exception):
    pass


class Story:
    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.steps = 0

    def step(self, title: str) -> None:
        self.steps += 1
        self.out(f"\n== {self.steps}. {title}")

    def say(self, text: str) -> None:
        self.out(f"   {text}")

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise DemoFailure(f"step {self.steps}: {what}")
        self.out(f"   ok: {what}")

    def waited(self, seconds: float, what: str) -> None:
        self.out(f"   waited {seconds:.1f} s for {what}")


def clip(text: str, width: int) -> str:
    """At most `width` characters, cut between words and marked with an ellipsis when cut."""
    return textwrap.shorten(text, width, placeholder=" …")


class Side:
    """One app instance: its adapters, its service over them (the demo's clock) and its function entry
    points. `ports` replaces the real adapters (tests wrap them to inject faults)."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        clock: Callable[[], datetime],
        ports: bootstrap.Ports | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self.ports = ports or bootstrap.real_ports(settings)
        self.service = bootstrap.assemble(settings, self.ports, clock)

    @contextmanager
    def active(self) -> Iterator[TransferService]:
        with bootstrap.use_service(self.service):
            yield self.service

    def http(
        self,
        function: Callable[[func.HttpRequest], func.HttpResponse],
        method: str,
        route: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        route_params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        request = func.HttpRequest(
            method,
            f"{BASE}/{route}",
            headers={"Content-Type": "application/json", **(headers or {})},
            route_params=route_params or {},
            body=raw,
        )
        with self.active():
            response = function(request)
        return response.status_code, json.loads(response.get_body() or b"null")

    def blob_event(self, app: Any, stack: Stack, name: str) -> None:
        """What the host does on a BlobCreated event: the trigger gets a BlobClient, never the bytes."""
        from azure.storage.blob import BlobClient

        client = BlobClient.from_connection_string(
            stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER, name
        )
        with self.active():
            app.on_target_blob(client)

    def timer(
        self, function: Callable[[func.TimerRequest], None], status: dict[str, str] | None = None
    ) -> None:
        """Invoke a timer function as the host does; `status` is its schedule status (Last/Next)."""
        with self.active():
            function(func.timer.TimerRequest(past_due=False, schedule_status=status or {}))


def _function_app() -> Any:
    import function_app

    return function_app


Finale = Callable[[Stack, "Side", "Side"], None]


def run(
    out: Callable[[str], None] = print,
    run_seconds: float = 0.3,
    dashboards: Path = dashboard_files.FOLDER,
    finale: Finale | None = None,
    run_shape: str = "spec",
) -> None:
    """Start the stack, tell the story, write both sides' dashboards into `dashboards`, stop the stack;
    DemoFailure when any step misbehaves. `finale` (tests) sees the stack and both sides before it stops.
    `run_shape` is what the emulator's source-trigger runs name of their blob (its
    `source_trigger_run_shape`: `spec`, nothing, as the REST spec promises; `response-uri`;
    `request-name`)."""
    story = Story(out)
    story.step("Start Azurite (a source and a target storage account) and the ARM/ACR Transfer emulator")
    stack = demo_stack.start(run_seconds=run_seconds)
    try:
        stack.emulator.admin.configure(source_trigger_run_shape=run_shape)
        with demo_stack.identity(stack):
            story.say(
                f"ARM endpoint {stack.emulator.arm_endpoint}, Azurite blob port {stack.azurite.blob_port}"
            )
            source, target = _story(story, stack)
            story.step("The dashboard of each side (GET /api/dashboard), written for a browser")
            sides = [(source, "http://localhost:7071/api/"), (target, "http://localhost:7072/api/")]
            for path in dashboard_files.write(sides, _function_app(), dashboards):
                story.say(f"open {path.resolve().as_uri()}")
            if finale is not None:
                finale(stack, source, target)
    finally:
        stack.stop()
    out("\nThe demo finished: every step did what it should.")


def _story(story: Story, stack: Stack) -> tuple[Side, Side]:
    app = _function_app()
    admin = stack.emulator.admin
    source = Side("source", load_settings(stack.source_env), stack.clock)
    target = Side("target", load_settings(stack.target_env), stack.clock)

    prepare(stack, source, target, story)
    with target.active():
        checks = {c.name: c for c in target.service.health()}
    failing = [f"{c.name}: {c.detail}" for c in checks.values() if not c.ok]
    story.check(
        not failing, f"target health: {checks['importPipeline'].detail}" if not failing else f"{failing}"
    )

    story.step("POST /api/exports on the source side (with an Idempotency-Key), and repeat it")
    body = {"artifacts": ["samples/hello-world:v1", "samples/nginx:1.27"], "targetName": "nightly"}
    status, first = source.http(app.start_export, "POST", "exports", body, {"Idempotency-Key": "nightly-1"})
    story.check(status == 202 and len(first["runs"]) == 1, f"202 Accepted, run {first['runs'][0]['id']}")
    status, again = source.http(app.start_export, "POST", "exports", body, {"Idempotency-Key": "nightly-1"})
    story.check(
        again["runs"][0]["id"] == first["runs"][0]["id"],
        "the repeat answers with the same run, no new deployment",
    )
    nightly = first["runs"][0]

    story.step("POST /api/exports with 60 artifacts: split into runs of at most 50")
    bulk_refs = [f"{repo}:v1" for repo in sorted(BULK)]
    status, bulk = source.http(
        app.start_export, "POST", "exports", {"artifacts": bulk_refs, "targetName": "bulk"}
    )
    story.check(
        status == 202 and [len(r["artifacts"]) for r in bulk["runs"]] == [50, 10],
        "two runs: 50 + 10 artifacts",
    )

    story.step("POST /api/exports of an artifact the registry does not have")
    status, missing = source.http(app.start_export, "POST", "exports", {"artifacts": ["samples/missing:v9"]})
    story.check(status == 202, "accepted: the service finds out, not the request")

    story.step("Reconcile timer on the source side until every export has finished; the copy step follows")
    export_ids = [nightly["id"], *(r["id"] for r in bulk["runs"]), missing["runs"][0]["id"]]
    runs = _reconcile_until(story, source, app, export_ids, copies=True)
    for run in runs:
        story.say(_line(run))
    story.check(all(r.status.value == "Succeeded" for r in runs[:3]), "nightly and bulk exports succeeded")
    story.check(
        all(r.copy_status is not None and r.copy_status.value == "success" for r in runs[:3]),
        "their blobs were copied to the target container",
    )

    story.step("GET /api/runs/{id} shows the failed export and why")
    failed_id = missing["runs"][0]["id"]
    status, failed = source.http(app.get_run, "GET", f"runs/{failed_id}", route_params={"run_id": failed_id})
    story.check(status == 200 and failed["status"] == "Failed", f"status Failed: {failed['error']}")
    story.check("samples/missing" in (failed["error"] or ""), "the error names the missing artifact")

    story.step("Target side: the blob trigger sees the copied blobs (fresh: left to the source trigger)")
    copied = [r.blob for r in runs[:3] if r.blob]
    props = _blob_properties(stack, copied[0])
    story.check(
        props["md5"] and props["category"] == "acr-transfer-blob",
        "the copy kept Content-MD5 and category metadata",
    )
    for name in copied:
        target.blob_event(app, stack, name)
    story.check(
        all(target.service.diagnose_blob(name).decision.outcome.value == "leave" for name in copied),
        "each blob left to the import pipeline's source trigger (no state needed while it is eligible)",
    )

    story.step("The emulator's source trigger imports them; reconcile records those runs")
    _wait(
        story,
        lambda: _imported(admin, ["samples/hello-world", "samples/nginx", "bulk/svc59"]),
        "the source trigger to fill the target registry",
    )
    adopted = _reconcile_until(story, target, app, None)
    story.check(
        len(adopted) == 3 and all(r.trigger.value == "source" for r in adopted),
        "3 source-trigger runs recorded on the target side",
    )
    story.check(all(r.status.value == "Succeeded" for r in adopted), "all succeeded")
    story.check(
        all(r.verification == "passed" for r in adopted),
        "their verification passed: each is tied to its manifest by the blob it names or, where ARM names "
        "none (the spec promises none), by the catalogDigest the export recorded",
    )

    _selectors_and_manifests(story, stack, source, target, app)
    supply_chain(story, stack, source, target, app, _reconcile_until, _imported_and_verified, _manifest)
    _aged_blob_refreshed(story, stack, source, target, app)

    story.step("Move the clock 61 days on; export again: the blob arrives too old for the source trigger")
    stack.advance_clock(days=61)
    status, late = source.http(
        app.start_export, "POST", "exports", {"artifacts": ["samples/hello-world:v2"], "targetName": "late"}
    )
    [late_run] = _reconcile_until(story, source, app, [late["runs"][0]["id"]], copies=True)
    story.check(
        late_run.copy_status is not None and late_run.copy_status.value == "success",
        f"copied as {late_run.blob}",
    )
    admin.scan_source_trigger()
    time.sleep(0.5)
    story.check(
        "v2" not in _tags(admin, "samples/hello-world"), "the source trigger left the aged blob alone"
    )

    story.step("The blob's event was missed; the sweep timer finds it and starts a manual import run")
    target.timer(app.sweep_stale_blobs)
    swept = [r for r in target.service.list_runs(kind="import") if r.trigger.value == "sweep"]
    swept_blobs = [r.blob for r in swept]
    story.check(
        swept_blobs == [late_run.blob],
        "one manual import, for the aged blob; the imported ones left alone"
        if swept_blobs == [late_run.blob]
        else f"manual imports of {swept_blobs}",
    )
    imports = _reconcile_until(story, target, app, None)
    manual = [r for r in imports if r.trigger.value == "sweep"]
    story.check(
        len(manual) == 1 and manual[0].status.value == "Succeeded", f"manual import {manual[0].id} succeeded"
    )
    story.check(manual[0].verification == "passed", f"and verified: {manual[0].verification_detail}")
    story.check(
        "v2" in _tags(admin, "samples/hello-world"), "samples/hello-world:v2 is in the target registry"
    )

    story.step("72 hours later: the reconcile timer cleans up the ARM resources of finished runs")
    story.say("(the first exports went already: the 61-day jump put them past the retention)")
    stack.advance_clock(hours=73)
    for _ in range(2):  # one tick sends the deletes (ARM deletes a deployment later: 202), the next sees them
        for side in (source, target):
            side.timer(app.reconcile)
    deleted = {r["path"].lower() for r in admin.requests() if r["method"] == "DELETE"}
    ours = [source.service.get_run(i) for i in [*export_ids, late_run.id]] + [
        target.service.get_run(manual[0].id)
    ]
    for run in ours:
        gone = {f"{run.pipeline_run_id}".lower(), f"/deployments/{run.deployment_name}".lower()}
        story.check(
            run.cleaned_up and all(any(path.endswith(g) for path in deleted) for g in gone),
            f"{run.kind.value} {run.id}: pipelineRun and deployment deleted",
        )
    foreign = [r.pipeline_run_id or "" for r in adopted]
    story.check(
        not any(path.endswith(f.lower()) for f in foreign for path in deleted),
        "runs the source trigger started are left alone",
    )

    story.step("The run tables and the target registry")
    for side in (source, target):
        status, listing = side.http(app.list_runs, "GET", "runs")
        story.say(f"{side.name}: GET /api/runs -> {status}")
        for run in listing["runs"]:
            row = f"{run['id']}  {run['kind']:6}  {run['trigger']:8} {run['status']:9}"
            verified = f" verification={run['verification']}" if run["verification"] else ""
            story.say(f"  {row} cleanedUp={run['cleanedUp']}{verified}")
    imports = [r for r in target.service.list_runs(kind="import") if r.status.value == "Succeeded"]
    story.check(
        all(r.verification in ("passed", "failed") for r in imports),
        f"each of the {len(imports)} imports that succeeded was verified: passed or failed, none unavailable",
    )
    content = admin.registry_content(demo_stack.TARGET_REGISTRY)
    hello = sorted(_tags(admin, "samples/hello-world"))
    story.say(f"target registry: {len(content)} repositories, e.g. samples/hello-world tags {hello}")
    story.check(
        len(content) == len(SAMPLES) + len(TEAM) + len(BULK) + len(SUPPLY_CHAIN_REPOSITORIES)
        and _tags(admin, "samples/hello-world") == {"v1", "v2"},
        "the target registry holds everything exported",
    )
    on_push.push_story(story, stack, app)
    return source, target


def _selectors_and_manifests(story: Story, stack: Stack, source: Side, target: Side, app: Any) -> None:
    """Issue 12: the scheduled export of a selector, incremental; a retag; verification on the target."""
    admin = stack.emulator.admin
    selector = demo_stack.SCHEDULED_SELECTOR
    story.step(f"The export schedule fires: TRANSFER_EXPORT_ARTIFACTS={selector}, incremental by default")
    source.timer(app.scheduled_export, {"Last": "2026-11-26T02:00:00", "Next": "2026-11-27T02:00:00"})
    [scheduled] = _scheduled_runs(source)
    wanted = ["team/api:v1.0", "team/api:v1.1", "team/web:v1.0"]
    story.check(
        list(scheduled.artifacts) == wanted and len(scheduled.digests) == 3,
        f"the selector expanded through the source registry's data plane: {', '.join(wanted)}",
    )
    [scheduled] = _reconcile_until(story, source, app, [scheduled.id], copies=True)
    body = _manifest(stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, scheduled.manifest)
    digests = {a["artifact"]: a["digest"] for a in body["artifacts"]}
    for artifact, digest in digests.items():
        story.say(f"{scheduled.manifest}: {artifact} {digest[:19]}…")
    story.check(
        digests == dict(scheduled.digests) and body["sourceRegistry"] == "sourceregistry.azurecr.io",
        "the manifest beside the blob names each tag with its digest",
    )
    story.check(
        _manifest(stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, scheduled.manifest) == body,
        "the copy step carried the manifest to the target container with the blob",
    )

    story.step(
        "Target side: the source trigger imports it; reconcile verifies the import against its manifest"
    )
    first = _imported_and_verified(story, stack, target, app, scheduled)
    story.check(first.verification == "passed", f"verification passed: {first.verification_detail}")

    story.step("The schedule fires again: nothing changed, so nothing starts")
    source.timer(app.scheduled_export, {"Last": "2026-11-27T02:00:00", "Next": "2026-11-28T02:00:00"})
    story.check(len(_scheduled_runs(source)) == 1, "no new run: every tag's digest is in the export ledger")
    status, nothing = source.http(
        app.start_export, "POST", "exports", {"artifacts": [selector], "incremental": True}
    )
    story.check(
        status == 200 and nothing["runs"] == [] and nothing["skipped"] == wanted,
        f'POST /api/exports {{"incremental": true}} -> 200, no runs, skipped {nothing["skipped"]}',
    )

    story.step("Push a new image as team/api:v1.1 (a retag): the next occurrence exports only that tag")
    moved = admin.retag(demo_stack.SOURCE_REGISTRY, "team/api", "v1.1")
    story.say(f"team/api:v1.1 {moved['previousDigest'][:19]}… -> {moved['digest'][:19]}…")
    source.timer(app.scheduled_export, {"Last": "2026-11-28T02:00:00", "Next": "2026-11-29T02:00:00"})
    retagged = _scheduled_runs(source)[0]
    story.check(list(retagged.artifacts) == ["team/api:v1.1"], "one run, for team/api:v1.1 alone")
    [retagged] = _reconcile_until(story, source, app, [retagged.id], copies=True)
    second = _imported_and_verified(story, stack, target, app, retagged)
    story.check(second.verification == "passed", f"its import verified: {second.verification_detail}")
    target_digest = (admin.registry_content(demo_stack.TARGET_REGISTRY)["team/api"]["tags"]).get("v1.1")
    story.check(target_digest == moved["digest"], "the target registry's team/api:v1.1 has the new digest")

    story.step("An import that skips an artifact (ContinueOnErrors) fails its verification, naming it")
    admin.fail_imports_of(demo_stack.TARGET_REGISTRY, ["team/web:v1.0"], "the target refused this one")
    try:
        status, partial = source.http(
            app.start_export, "POST", "exports", {"artifacts": ["team/*:v1.0"], "targetName": "partial"}
        )
        [exported] = _reconcile_until(story, source, app, [partial["runs"][0]["id"]], copies=True)
        skipped = _imported_and_verified(story, stack, target, app, exported)
    finally:
        admin.clear_import_failures(demo_stack.TARGET_REGISTRY)
    status, shown = target.http(app.get_run, "GET", f"runs/{skipped.id}", route_params={"run_id": skipped.id})
    story.check(
        shown["status"] == "Succeeded" and shown["verification"] == "failed",
        f"the import Succeeded, its verification failed: {shown['verificationDetail']}",
    )
    story.check(shown["skippedArtifacts"] == ["team/web:v1.0"], "skippedArtifacts names team/web:v1.0")
    with target.active():
        checks = {c.name: c for c in target.service.health()}
    story.check(
        checks["verification"].ok and checks["verification"].detail.startswith("warning:"),
        f"health warns (and stays healthy): {clip(checks['verification'].detail, 90)}",
    )


def _scheduled_runs(side: Side) -> list[Run]:
    return [r for r in side.service.list_runs(kind="export") if r.trigger.value == "schedule"]


def _manifest(stack: Stack, account: str, container: str, name: str | None) -> Any:
    from azure.storage.blob import BlobClient

    if name is None:
        raise DemoFailure("the run has no manifest")
    client = BlobClient.from_connection_string(stack.connection_string(account), container, name)
    return json.loads(client.download_blob().readall())


def _imported_and_verified(story: Story, stack: Stack, target: Side, app: Any, export: Run) -> Run:
    """The blob event for the copied blob and its manifest (which the trigger leaves alone), then reconcile
    on the target side until the source trigger's run of this blob is recorded, finished and verified."""
    if export.blob is None or export.manifest is None:
        raise DemoFailure(f"step {story.steps}: export {export.id} has no blob or no manifest")
    for name in (export.blob, export.manifest):
        target.blob_event(app, stack, name)
    story.check(
        target.ports.state.blob_records(export.manifest) == [],
        f"the blob trigger left {export.manifest} alone",
    )
    deadline = time.monotonic() + 60
    while True:
        target.timer(app.reconcile)
        # a run that names its blob, or (the spec's shape) one verification tied to this blob's manifest
        runs = [
            r
            for r in target.service.list_runs(kind="import")
            if r.blob == export.blob or (r.blob is None and r.manifest == export.manifest)
        ]
        if runs and runs[0].status.terminal:
            return runs[0]
        if time.monotonic() > deadline:
            raise DemoFailure(f"step {story.steps}: the import of {export.blob} did not finish")
        time.sleep(0.3)


def prepare(stack: Stack, source: Side, target: Side, story: Story | None = None) -> None:
    """Seed the source registry and deploy both pipelines from templates/ (the demo and the dev server)."""
    story = story or Story(lambda _: None)
    admin = stack.emulator.admin
    story.step("Seed the source registry; the target registry starts empty")
    admin.add_repositories(demo_stack.SOURCE_REGISTRY, {**SAMPLES, **TEAM, **BULK})
    story.check(
        len(admin.registry_content(demo_stack.SOURCE_REGISTRY)) == REPOSITORIES,
        f"source registry has {REPOSITORIES} repositories",
    )
    story.check(admin.registry_content(demo_stack.TARGET_REGISTRY) == {}, "target registry is empty")
    story.step("Deploy the pipelines from templates/ (SasToken mode; the vault URI comes from reference())")
    exports = stack.container_url(demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER)
    imports = stack.container_url(demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER)
    _deploy_pipeline(story, source.service, "export", exports, "sourcevault")
    # OverwriteTags: a retagged image replaces the tag; ContinueOnErrors: an artifact that cannot be
    # imported is skipped (and the verification against the manifest names it).
    _deploy_pipeline(
        story, target.service, "import", imports, "targetvault", ("OverwriteTags", "ContinueOnErrors")
    )


def _deploy_pipeline(
    story: Story, service: TransferService, kind: str, uri: str, vault: str, options: tuple[str, ...] = ()
) -> None:
    name = service.deploy_pipeline(kind, PipelineSpec(uri, "SasToken", vault, "pipelinesas", options))
    state = None
    for _ in range(100):
        state = service.deployment(name)
        if state.provisioning_state in ("Succeeded", "Failed", "Canceled"):
            break
        time.sleep(0.1)
    story.check(
        state is not None and state.provisioning_state == "Succeeded", f"{kind} pipeline deployed ({name})"
    )


def _aged_blob_refreshed(story: Story, stack: Stack, source: Side, target: Side, app: Any) -> None:
    """The default TRANSFER_STALE_BLOB_ACTION=refresh, end to end. The emulator's source-trigger window is
    set to seconds (a blob 5 s old is too old for it) and a target instance whose clock runs 61 days ahead
    sees the same blob as aged: it refreshes the blob's Last-Modified, and the source trigger imports it."""
    admin = stack.emulator.admin
    story.step("An aged blob, the default refresh: the source trigger's window shrunk to 4 seconds")
    admin.configure(source_trigger_window_days=0)  # the source trigger takes nothing while the copy lands
    status, body = source.http(
        app.start_export, "POST", "exports", {"artifacts": ["samples/busybox:1.36"], "targetName": "aged"}
    )
    story.check(status == 202, "POST /api/exports: 202")
    [aged] = _reconcile_until(story, source, app, [body["runs"][0]["id"]], copies=True)
    assert aged.blob is not None
    time.sleep(5)
    admin.configure(source_trigger_window_days=4 / 86400)
    admin.scan_source_trigger()
    story.check("1.36" not in _tags(admin, "samples/busybox"), "the blob is too old for the source trigger")

    env = {**stack.target_env, "TRANSFER_STALE_BLOB_ACTION": "refresh"}
    later = demo_stack.DemoClock(stack.clock.offset + timedelta(days=61))
    refresher = Side("target", load_settings(env), later)
    before = _blob_properties(stack, aged.blob)
    refresher.blob_event(app, stack, aged.blob)
    after = _blob_properties(stack, aged.blob)
    story.check(
        after["last_modified"] > before["last_modified"] and after["md5"] == before["md5"],
        "the blob trigger refreshed its Last-Modified (a metadata key merged; Content-MD5 and category kept)",
    )
    admin.scan_source_trigger()
    _wait(story, lambda: "1.36" in _tags(admin, "samples/busybox"), "the source trigger to import it")
    story.check(
        True, "the import pipeline's source trigger imported the refreshed blob: samples/busybox:1.36"
    )
    _wait(
        story,
        lambda: any(
            r.trigger.value == "source" and r.created_at >= after["last_modified"]
            for r in _reconciled(target, app)
        ),
        "reconcile to record the source trigger's run",
    )
    story.check(True, "reconcile recorded the source trigger's run: later passes leave the blob alone")
    target.blob_event(app, stack, aged.blob)  # a repeated event (the refresh itself raises none)
    story.check(
        _blob_properties(stack, aged.blob)["last_modified"] == after["last_modified"],
        "a repeated event, on today's clock, finds it fresh and refreshes nothing more",
    )
    admin.configure(source_trigger_window_days=60)


def _reconciled(side: Side, app: Any) -> list[Run]:
    side.timer(app.reconcile)
    return side.service.list_runs(kind="import", top=1000)


def _reconcile_until(
    story: Story, side: Side, app: Any, run_ids: list[str] | None, copies: bool = False, timeout: float = 60
) -> list[Run]:
    """Run the reconcile timer until the runs (or every run of this side) are finished (and copied)."""
    deadline = time.monotonic() + timeout
    while True:
        side.timer(app.reconcile)
        runs = [side.service.get_run(i) for i in run_ids] if run_ids else side.service.list_runs(top=100)
        done = runs and all(r.status.terminal for r in runs)
        if done and copies:
            done = all(r.copy_status is None or r.copy_status.value != "pending" for r in runs) and all(
                r.copy_status is not None for r in runs if r.status.value == "Succeeded"
            )
        if done:
            return runs
        if time.monotonic() > deadline:
            raise DemoFailure(f"step {story.steps}: runs did not finish: {[_line(r) for r in runs]}")
        time.sleep(0.3)


def _wait(story: Story, ready: Callable[[], bool], what: str, timeout: float = 30) -> None:
    started = time.monotonic()
    while not ready():
        if time.monotonic() > started + timeout:
            raise DemoFailure(f"step {story.steps}: timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)
    story.waited(time.monotonic() - started, what)


def _blob_properties(stack: Stack, name: str) -> dict[str, Any]:
    from azure.storage.blob import BlobClient

    props = BlobClient.from_connection_string(
        stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER, name
    ).get_blob_properties()
    return {
        "md5": props.content_settings.content_md5,
        "category": props.metadata.get("category"),
        "last_modified": props.last_modified,
    }


def _tags(admin: Any, repository: str) -> set[str]:
    return set((admin.registry_content(demo_stack.TARGET_REGISTRY).get(repository) or {}).get("tags", {}))


def _imported(admin: Any, repositories: list[str]) -> bool:
    content = admin.registry_content(demo_stack.TARGET_REGISTRY)
    return all(repo in content for repo in repositories)


def _line(run: Run) -> str:
    copy = f" copy={run.copy_status.value}" if run.copy_status else ""
    error = f" error={clip(run.error, 80)!r}" if run.error else ""
    what = f"{run.kind.value} {run.status.value} artifacts={len(run.artifacts)} blob={run.blob}"
    return f"{run.id} {what}{copy}{error}"
