"""The app's logs reach Application Insights with the `transfer.*` dimensions the alert queries read
(infra/README.md): the events are logged where they happen, DimensionFilter names their fields, setup()
wires the distro's handler to the app's loggers only, and no secret goes along."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World
from transfer.adapters import telemetry
from transfer.domain import causes, manifests
from transfer.domain.errors import TransferError
from transfer.domain.runs import RunStatus, Trigger
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE, Outcome

SECRET = "SUPERSECRETSIGNATURE"
SAS_URL = f"https://acct.blob.core.windows.net/transfer/b?sv=2024-01-01&sp=rl&sig={SECRET}"


@pytest.fixture
def exported(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog's handler (a new one for each test) filtered as the exporting handler is: what it captures
    is what would be sent."""
    caplog.handler.addFilter(telemetry.DimensionFilter())
    caplog.set_level(logging.INFO)
    return caplog


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "transfer.event", None) == event]


def assert_no_secret(records: list[logging.LogRecord]) -> None:
    for record in records:
        assert SECRET not in record.getMessage()
        assert all(SECRET not in value for value in telemetry.dimensions(record).values())


# ---- the filter --------------------------------------------------------------------------------------


class Color(StrEnum):
    RED = "red"


def record(msg: str = "hello %s", args: tuple[Any, ...] = ("world",), **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("transfer", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_the_filter_adds_the_dimension_names_as_text_and_keeps_the_extras() -> None:
    made = record(run_id="r1", blob="a/b", trigger=Color.RED, outcome="Failed", error_cause=None, event="")
    assert telemetry.DimensionFilter().filter(made) is True
    assert telemetry.dimensions(made) == {
        "transfer.run_id": "r1",
        "transfer.blob": "a/b",
        "transfer.trigger": "red",
        "transfer.outcome": "Failed",
    }
    assert (made.run_id, made.trigger) == ("r1", Color.RED)  # other handlers still see the extras
    assert telemetry.dimensions(record()) == {}


def test_the_filter_takes_secrets_out_of_the_message_and_the_dimensions() -> None:
    made = record("copy of %s failed", (SAS_URL,), blob=f"x?sig={SECRET}")
    telemetry.DimensionFilter().filter(made)
    assert SECRET not in made.getMessage()
    assert "https://acct.blob.core.windows.net/transfer/b?REDACTED" in made.getMessage()
    assert SECRET not in made.__dict__["transfer.blob"]


# ---- the events the alerts need ----------------------------------------------------------------------


def test_a_failed_run_is_one_record_with_every_dimension_and_no_secret(
    world: World, exported: pytest.LogCaptureFixture
) -> None:
    [run] = world.service.start_export(["samples/hello:v1"], Trigger.HTTP, "nightly").runs
    world.finish(run, "Failed", error=f"AuthorizationPermissionMismatch: denied for {SAS_URL}")
    world.service.reconcile()
    assert world.stored_run(run.id).status is RunStatus.FAILED
    [failed] = events(exported, "run.failed")
    assert telemetry.dimensions(failed) == {
        "transfer.event": "run.failed",
        "transfer.run_id": run.id,
        "transfer.blob": f"nightly-{run.id}",
        "transfer.trigger": "http",
        "transfer.outcome": "Failed",
        "transfer.error_cause": "StorageRoleMissing",  # a SAS 403 on a ManagedIdentity pipeline
    }
    assert failed.levelno == logging.WARNING
    world.service.reconcile()  # recorded once: a later pass does not report it again
    assert len(events(exported, "run.failed")) == 1
    assert_no_secret(exported.records)


def test_a_succeeded_run_and_a_rejected_deployment_are_events_too(
    world: World, exported: pytest.LogCaptureFixture
) -> None:
    [run] = world.service.start_export(["samples/hello:v1"], Trigger.CLI).runs
    world.finish(run)
    world.service.reconcile()
    [succeeded] = events(exported, "run.succeeded")
    assert telemetry.dimensions(succeeded)["transfer.run_id"] == run.id
    assert telemetry.dimensions(succeeded)["transfer.trigger"] == "cli"
    world.arm.fail("begin_deployment", TransferError(f"InvalidTemplateDeployment: see {SAS_URL}"))
    [rejected] = world.service.start_export(["samples/web:v1"], Trigger.HTTP).runs
    assert rejected.status is RunStatus.FAILED
    [failed] = events(exported, "run.failed")
    assert telemetry.dimensions(failed)["transfer.run_id"] == rejected.id
    assert_no_secret(exported.records)


def test_a_failed_verification_is_an_event_with_its_run_and_blob(
    world: World, exported: pytest.LogCaptureFixture
) -> None:
    digest = "sha256:" + "1" * 64
    built = manifests.build(
        run_id="20261126110000000e000001",
        pipeline_run_id=None,
        source_registry="source.azurecr.io",
        exported_at=world.clock(),
        blob="b2",
        artifacts=["team/api:v1.0", "team/web:v1.0"],
        digests={"team/api:v1.0": digest, "team/web:v1.0": digest},
    )
    world.put_blob("b2", metadata={CATEGORY_KEY: CATEGORY_VALUE})
    world.blobs.put(manifests.manifest_name("b2"), content=built.encode())
    [run] = world.service.start_import("b2", Trigger.HTTP).runs
    world.arm.finish_run(run.id, "Succeeded", imported_artifacts=("team/api:v1.0",))
    world.service.reconcile()
    [failed] = events(exported, "verification.failed")
    assert telemetry.dimensions(failed) == {
        "transfer.event": "verification.failed",
        "transfer.run_id": run.id,
        "transfer.blob": "b2",
        "transfer.trigger": "http",
        "transfer.outcome": "failed",
    }


def test_a_blob_waiting_for_a_person_names_its_last_failed_run(
    world: World, exported: pytest.LogCaptureFixture
) -> None:
    world.add_blob("odd", category=False)
    last = None
    for _ in range(world.settings.import_max_attempts):
        result = world.service.handle_blob("odd", Trigger.SWEEP)
        assert result.outcome is Outcome.IMPORT, result.reason
        assert result.run is not None
        last = result.run.id
        world.arm.finish_run(last, "Failed", error="BlobNotFound: The specified blob does not exist.")
        world.service.reconcile()
        world.clock.advance(hours=3)
    assert world.service.handle_blob("odd", Trigger.SWEEP).outcome is Outcome.WAITING
    [waiting] = events(exported, "blob.needs_attention")
    assert telemetry.dimensions(waiting) == {
        "transfer.event": "blob.needs_attention",
        "transfer.run_id": last,
        "transfer.blob": "odd",
        "transfer.trigger": "sweep",
        "transfer.outcome": "waiting",
    }
    assert [telemetry.dimensions(r)["transfer.error_cause"] for r in events(exported, "run.failed")] == [
        "BlobMissing"
    ] * world.settings.import_max_attempts


# ---- setup -------------------------------------------------------------------------------------------


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """The `transfer` logger, with whatever handlers a test adds removed afterwards."""
    logger = logging.getLogger(telemetry.LOGGER)
    before = list(logger.handlers)
    yield logger
    for handler in [h for h in logger.handlers if h not in before]:
        logger.removeHandler(handler)


def test_without_a_connection_string_setup_does_nothing(app_logger: logging.Logger) -> None:
    def never(**options: Any) -> None:
        raise AssertionError("configured without a connection string")

    assert telemetry.setup({}, configure=never) is None
    assert telemetry.setup({telemetry.CONNECTION_STRING: "  "}, configure=never) is None


def test_setup_exports_the_app_loggers_only_once_with_the_filter(app_logger: logging.Logger) -> None:
    calls: list[dict[str, Any]] = []

    def configure(**options: Any) -> None:  # as the distro does: one handler on `logger_name`
        calls.append(options)
        logging.getLogger(options["logger_name"]).addHandler(logging.NullHandler())

    env = {telemetry.CONNECTION_STRING: "InstrumentationKey=00000000-0000-0000-0000-000000000000"}
    handler = telemetry.setup(env, configure=configure)
    assert handler is not None
    assert handler in app_logger.handlers
    assert any(isinstance(f, telemetry.DimensionFilter) for f in handler.filters)
    assert telemetry.setup(env, configure=configure) is handler  # a second call configures nothing
    [options] = calls
    assert options["logger_name"] == "transfer"
    assert options["connection_string"] == env[telemetry.CONNECTION_STRING]
    assert (options["disable_tracing"], options["disable_metrics"], options["enable_live_metrics"]) == (
        True,
        True,
        False,
    )
    assert all(not o["enabled"] for o in options["instrumentation_options"].values())


def test_a_failing_setup_leaves_the_app_running(
    app_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**options: Any) -> None:
        raise RuntimeError(f"bad connection string ...;sig={SECRET}")

    env = {telemetry.CONNECTION_STRING: "InstrumentationKey=x"}
    with caplog.at_level(logging.WARNING):
        assert telemetry.setup(env, configure=broken) is None
    assert "export of the app's logs is off" in caplog.text
    assert SECRET not in caplog.text


def test_with_the_opentelemetry_handler_the_dimensions_become_log_attributes(
    app_logger: logging.Logger,
) -> None:
    """What the distro's handler does with a record of a child logger (transfer.functions): the exporter
    writes each attribute of the log as the custom dimension of that name."""
    otel_logs = pytest.importorskip("opentelemetry.sdk._logs")
    otel_export = pytest.importorskip("opentelemetry.sdk._logs.export")
    otel_handler = pytest.importorskip("opentelemetry.instrumentation.logging.handler")
    exporter_type = getattr(otel_export, "InMemoryLogRecordExporter", None) or otel_export.InMemoryLogExporter
    exporter = exporter_type()

    def configure(**options: Any) -> None:
        provider = otel_logs.LoggerProvider()
        provider.add_log_record_processor(otel_export.SimpleLogRecordProcessor(exporter))
        logging.getLogger(options["logger_name"]).addHandler(
            otel_handler.LoggingHandler(logger_provider=provider)
        )

    handler = telemetry.setup({telemetry.CONNECTION_STRING: "InstrumentationKey=x"}, configure=configure)
    assert handler is not None
    child = logging.getLogger("transfer.functions")
    previous = app_logger.level
    app_logger.setLevel(logging.INFO)
    try:
        child.info("blob %s: %s", "b1", "import", extra={"blob": "b1", "run_id": "r1", "trigger": "blob"})
    finally:
        app_logger.setLevel(previous)
    [exported_log] = exporter.get_finished_logs()
    log_record = getattr(exported_log, "log_record", exported_log)
    attributes = dict(log_record.attributes)
    assert {k: v for k, v in attributes.items() if k.startswith("transfer.")} == {
        "transfer.blob": "b1",
        "transfer.run_id": "r1",
        "transfer.trigger": "blob",
    }
    assert log_record.body == "blob b1: import"


# ---- docs/operations.md ------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]


def kusto_blocks(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.findall(r"```kusto\n(.*?)```", text, re.DOTALL)]


def test_the_operations_guide_has_the_alert_queries_and_every_known_cause() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    alert_queries = kusto_blocks((ROOT / "infra" / "README.md").read_text(encoding="utf-8"))
    assert len(alert_queries) == 3
    assert set(alert_queries) <= set(kusto_blocks(guide))
    known = {value.code for value in vars(causes).values() if isinstance(value, causes.Cause)}
    documented = set(re.findall(r"^\| `(\w+)` \|", guide, re.MULTILINE))
    assert known <= documented, known - documented
    for name in telemetry.DIMENSIONS.values():
        assert f"`{name}`" in guide
