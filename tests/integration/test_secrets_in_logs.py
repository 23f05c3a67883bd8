"""No secret in any log record or answer: a full transfer in SasToken mode with the copy step, against
Azurite and the emulator, with DEBUG logging on for every logger.

A handler on the root logger at DEBUG keeps every record the app's work produces; each is searched in
full (message, arguments, `extra` fields, exception text), as are the API answers (run JSON, run lists,
the blob diagnosis, health) and the CLI's output. The secrets looked for are the ones this stack really
has, by value (both storage account keys, every SAS signature in the Key Vaults, the managed identity's
header secret, bearer tokens), and by shape (`sig=`, `AccountKey=`, `Bearer ...`, connection strings,
JWTs). The emulator runs in this process on its own threads and logs its own Azurite traffic: records
are kept from the thread that runs the app (this test's), which is where every app call happens.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest

import function_app
from demo import scenario
from demo import stack as demo_stack
from demo.stack import Stack
from emulator import azurite
from tests.integration.polling import wait_for
from tests.integration.reliability_stack import later, reconciled, side, started_stack
from transfer.adapters.credentials import make_credential
from transfer.adapters.keyvault import KeyVaultSecretReader
from transfer.domain.runs import RunStatus, Trigger
from transfer.entrypoints import cli

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

REPOSITORIES = {"secrets/app": {"v1": None, "v2": None}}
LEAKY_SAS = "sv=2024-08-04&sr=c&sp=rl&se=2030-01-01&sig=LeakedSignatureValue0123456789%2Babc%3D"
LEAKY_URL = f"https://sourceacct.blob.core.windows.net/exports/x?{LEAKY_SAS}"
SHAPES = {
    "sig=": re.compile(r"(?i)\bsig(?:=|%3D)(?!REDACTED)[^&\s'\"<>]"),
    "AccountKey=": re.compile(r"(?i)\bAccountKey(?:=|%3D)(?!REDACTED)[^;&\s'\"<>]"),
    "connection string": re.compile(r"(?i)DefaultEndpointsProtocol=|UseDevelopmentStorage=|AccountName=\w+;"),
    # a token, not a challenge's `Bearer authorization="..."`
    "bearer token": re.compile(r"(?i)\bBearer\s+(?!REDACTED)(?![A-Za-z_]+=)[A-Za-z0-9._~+/=-]{8,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "emulator token": re.compile(r"\bemulator-[A-Za-z0-9_-]{20,}"),
    "access_token": re.compile(r"(?i)\b(?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?(?!REDACTED)\w"),
}
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Everything(logging.Handler):
    """Every record of one thread, kept as the full text a log sink could receive."""

    def __init__(self, thread: int) -> None:
        super().__init__(logging.DEBUG)
        self.thread = thread
        self.texts: list[tuple[str, str]] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        text = self.formatter.format(record)  # message with its arguments, exception text, stack info
        extras = {k: v for k, v in vars(record).items() if k not in STANDARD}
        self.texts.append((record.name, f"{text} {extras!r} {record.args!r}"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with started_stack(repositories=REPOSITORIES) as started:
        yield started


@pytest.fixture
def everything() -> Iterator[Everything]:
    """DEBUG for the root and every logger there is, one handler on the root; all restored after."""
    handler = Everything(threading.get_ident())
    root = logging.getLogger()
    loggers = [
        root,
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in levels.items():
            logger.setLevel(level)


def known_secrets(stack: Stack) -> dict[str, str]:
    """This stack's secrets by value: account keys, every SAS signature in the vaults, the MSI header."""
    found = {f"account key of {name}": key for name, key in stack.keys.items()}
    found["Azurite's default account key"] = azurite.ACCOUNT_KEY
    found["IDENTITY_HEADER"] = stack.emulator.identity_header
    reader = KeyVaultSecretReader(make_credential(side(stack, "source").service.settings))
    source, target = side(stack, "source").service, side(stack, "target").service
    uris = {
        "export pipeline SAS": source.pipeline("export").key_vault_uri,
        "import pipeline SAS": target.pipeline("import").key_vault_uri,
        "copy target SAS": source.settings.copy_target_sas_secret_uri,
    }
    for label, uri in uris.items():
        assert uri, label
        token = reader.read_sas(uri).token
        [signature] = re.findall(r"(?:^|&)sig=([^&]+)", token)
        for form in {signature, unquote(signature), quote(unquote(signature), safe="")}:
            found[f"{label} signature ({form[:4]}...)"] = form
    found["the leaky SAS injected as an error message"] = "LeakedSignatureValue0123456789"
    return found


def leaks(texts: list[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    found = []
    for where, text in texts:
        for label, value in secrets.items():
            if value and value in text:
                found.append(f"{where}: {label}: {text[:300]}")
        for label, pattern in SHAPES.items():
            match = pattern.search(text)
            if match:
                found.append(f"{where}: {label} {text[max(0, match.start() - 80) : match.end() + 40]!r}")
    return found


def run_cli(s: scenario.Side, *argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with s.active():
        cli.main(["--output", "json", *argv], out=out, err=err, sleep=lambda _: None)
    return out.getvalue() + err.getvalue()


def test_a_full_sas_token_transfer_with_the_copy_step_leaks_no_secret(
    stack: Stack, everything: Everything
) -> None:
    secrets = known_secrets(stack)
    admin = stack.emulator.admin
    answers: list[tuple[str, str]] = []

    def answer(what: str, status: int, body: Any) -> Any:
        answers.append((what, json.dumps(body)))
        return body

    source, target = side(stack, "source"), side(stack, "target")
    # the export, over HTTP, repeated with its key; the reconcile timer until the copy settled
    request = {"artifacts": ["secrets/app:v1"], "targetName": "secrets"}
    headers = {"Idempotency-Key": "secrets-1"}
    for _ in range(2):
        status, body = source.http(function_app.start_export, "POST", "exports", request, headers)
        assert status == 202, answer("POST /api/exports", status, body)
        answer("POST /api/exports", status, body)
    [run_id] = [run["id"] for run in body["runs"]]
    wait_for(lambda: _timer_until(source, run_id, copied=True), "the export and its copy", timeout=30)
    exported = source.service.get_run(run_id)
    assert exported.status is RunStatus.SUCCEEDED
    assert exported.copy_status is not None
    assert exported.copy_status.value == "success", exported.copy_error
    assert exported.blob is not None

    # the target side: the blob's event, the source trigger's run recorded, a manual import of it too
    target.blob_event(function_app, stack, exported.blob)
    wait_for(
        lambda: _timer_and_list(target) and any(r.trigger is Trigger.SOURCE for r in _imports(target)),
        "the source trigger's run recorded",
    )
    status, body = target.http(function_app.start_import, "POST", "imports", {"blob": exported.blob})
    assert status == 202, answer("POST /api/imports", status, body)
    answer("POST /api/imports", status, body)
    [imported] = reconciled(target, [body["runs"][0]["id"]])
    assert imported.status is RunStatus.SUCCEEDED, imported.error

    # a run that fails with a SAS URL in its message, and an ARM read that fails with one
    admin.fail_next_run(f"could not write the blob {LEAKY_URL}: AuthorizationFailure")
    status, body = source.http(
        function_app.start_export, "POST", "exports", {"artifacts": ["secrets/app:v2"]}
    )
    [failed] = reconciled(source, [body["runs"][0]["id"]])
    assert failed.status is RunStatus.FAILED
    assert "sig=REDACTED" in (failed.error or "") or "?REDACTED" in (failed.error or ""), failed.error
    admin.inject_fault(
        status=500, method="GET", path="/deployments/", count=30, message=f"backend said {LEAKY_URL}"
    )
    source.timer(function_app.reconcile)
    admin.clear_faults()

    # every read the API offers, on both sides, and the CLI's
    for s in (source, target):
        for what, function, route, params in (
            ("GET /api/runs", function_app.list_runs, "runs", {}),
            ("GET /api/health", function_app.health, "health", {}),
        ):
            status, body = s.http(function, "GET", route, route_params=params)
            answer(f"{s.name} {what}", status, body)
        for run in s.service.list_runs(top=100):
            status, body = s.http(
                function_app.get_run, "GET", f"runs/{run.id}", route_params={"run_id": run.id}
            )
            answer(f"{s.name} GET /api/runs/{run.id}", status, body)
        for argv in (("runs",), ("health",), ("show", failed.id if s is source else imported.id)):
            answers.append((f"{s.name} CLI {' '.join(argv)}", run_cli(s, *argv)))
    status, body = target.http(
        function_app.get_blob, "GET", f"blobs/{exported.blob}", route_params={"name": exported.blob}
    )
    answer("GET /api/blobs/{name}", status, body)

    # cleanup, 73 hours on: deletes the app's pipelineRuns and deployments (one tick sends the deletes,
    # ARM answers 202 for a deployment and deletes it later, the next tick sees it gone)
    cleaner = side(stack, "source", later(hours=73))
    cleaner.timer(function_app.reconcile)
    cleaner.timer(function_app.reconcile)
    assert all(r.cleaned_up for r in source.service.list_runs(top=100) if r.status.terminal and r.owned)

    assert len(everything.texts) > 200  # DEBUG really was on: SDK requests, urllib3, the app's own
    assert any(name.startswith("urllib3") for name, _ in everything.texts)
    assert any(name.startswith("azure.core") for name, _ in everything.texts)
    assert any(name.startswith("transfer") for name, _ in everything.texts)
    assert any("sig=REDACTED" in text for _, text in everything.texts)  # the SAS requests were logged
    found = leaks(everything.texts, secrets) + leaks(answers, secrets)
    assert found == [], "\n".join(found[:20])


def _timer_until(s: scenario.Side, run_id: str, copied: bool) -> bool:
    s.timer(function_app.reconcile)
    run = s.service.get_run(run_id)
    return run.status.terminal and (
        not copied or (run.copy_status is not None and run.copy_status.value != "pending")
    )


def _timer_and_list(s: scenario.Side) -> bool:
    s.timer(function_app.reconcile)
    return True


def _imports(s: scenario.Side) -> list[Any]:
    return s.service.list_runs(kind="import", top=100)


def test_the_shapes_find_what_they_look_for() -> None:
    """The search itself: each shape matches a secret and none matches its redacted form."""
    for text in (
        LEAKY_URL,
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0",
        "Authorization: Bearer abcdefgh12345678",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.sig",
        '{"access_token": "xyz"}',
    ):
        assert leaks([("t", text)], {}), text
    for text in (
        "sig=REDACTED",
        "AccountKey=REDACTED",
        "Bearer REDACTED",
        "https://a/b?REDACTED",
        'WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/x"',
    ):
        assert leaks([("t", text)], {}) == [], text
    assert demo_stack.SOURCE_ACCOUNT in LEAKY_URL
