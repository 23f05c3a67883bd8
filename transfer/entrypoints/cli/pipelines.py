"""`pipelines deploy|show|list|delete`: the export and import pipelines, and what their identity needs."""

from __future__ import annotations

from typing import Any

from transfer.domain.arm_views import Pipeline
from transfer.domain.errors import InvalidInput, TransferError
from transfer.entrypoints.cli.console import EXIT_TRANSIENT, FAILED, OK, Invocation, pipeline_lines, tabulate
from transfer.entrypoints.cli.waiting import DEPLOYMENT_TERMINAL, wait_for_deployment
from transfer.service import PipelineSpec


def cmd_pipelines(invocation: Invocation) -> int:
    a = invocation.args
    if a.action == "show":
        pipeline = invocation.service.pipeline(a.kind)
        invocation.console.emit(dict(pipeline.resource), lambda: pipeline_lines(pipeline))
        return OK
    if a.action == "list":
        return _list_pipelines(invocation)
    if a.action == "delete":
        return _delete_pipeline(invocation)
    if a.action == "migrate":
        return _migrate(invocation)
    if a.kind == "export" and a.no_source_trigger:
        raise InvalidInput("only an import pipeline has a source trigger", target="--no-source-trigger")
    spec = PipelineSpec(
        storage_uri=a.storage_uri,
        storage_access_mode=a.mode,
        key_vault_name=a.key_vault,
        sas_secret_name=a.sas_secret,
        options=tuple(a.option),
        source_trigger=not a.no_source_trigger,
        user_assigned_identity=a.user_assigned_identity,
        grant_storage_role=a.grant_storage_role,
        key_vault_access=a.key_vault_access,
    )
    name = invocation.service.deploy_pipeline(a.kind, spec)
    state, error = "Accepted", None
    if a.wait:
        state, error = wait_for_deployment(invocation, name)
    body: dict[str, Any] = {"deployment": name, "provisioningState": state, "error": error}
    lines = [f"deployment {name}: {state}" + (f": {error}" if error else "")]
    if state.lower() == "succeeded":
        identity, more = _identity(invocation, a.kind)
        body["identity"] = identity
        lines += more
    elif not a.wait:
        lines.append("with --wait: the pipeline identity's principal id and the roles it still needs")
    invocation.console.emit(body, lambda: lines)
    if state.lower() in ("failed", "canceled"):
        return FAILED
    return EXIT_TRANSIENT if a.wait and state.lower() not in DEPLOYMENT_TERMINAL else OK


def _identity(invocation: Invocation, kind: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The deployed pipeline's identity and the roles still to grant, as JSON and as lines. A read that
    fails says so and changes nothing else: the deployment itself succeeded."""
    try:
        needs = invocation.service.pipeline_identity(kind)
    except TransferError as exc:
        return None, [f"the pipeline's identity could not be read: {exc.message}"]
    pipeline = needs.pipeline
    body = {
        "type": pipeline.identity_type,
        "principalId": pipeline.principal_id,
        "storageAccessMode": pipeline.storage_access_mode,
        "rolesToGrant": [
            {"role": g.role, "scope": g.scope, "command": g.command, "note": g.note or None}
            for g in needs.grants
        ],
        "notes": list(needs.notes),
    }
    lines = [f"pipeline identity: {pipeline.principal_id or 'unknown'} ({pipeline.identity_type or 'none'})"]
    if needs.grants:
        lines.append("still to grant:")
        for grant in needs.grants:
            lines.append(f"  {grant.role} on {grant.scope}:")
            lines.append(f"    {grant.command}")
            if grant.note:
                lines.append(f"    ({grant.note})")
    else:
        lines.append("nothing left to grant")
    lines += [f"  {note}" for note in needs.notes]
    return body, lines


def _list_pipelines(invocation: Invocation) -> int:
    listed = invocation.service.list_pipelines()
    body = {"pipelines": [{**_pipeline_json(p.pipeline), "configured": p.configured} for p in listed]}

    def table() -> list[str]:
        if not listed:
            return ["the registry has no export or import pipelines"]
        rows = [
            (
                p.pipeline.kind,
                p.pipeline.name,
                "yes" if p.configured else "",
                p.pipeline.storage_access_mode,
                p.pipeline.storage_uri,
                p.pipeline.source_trigger_status or "",
                p.pipeline.provisioning_state,
                p.pipeline.principal_id,
            )
            for p in listed
        ]
        header = ("KIND", "NAME", "CONFIGURED", "STORAGE ACCESS", "STORAGE URI", "SOURCE TRIGGER", "STATE")
        return tabulate((*header, "PRINCIPAL ID"), rows)

    invocation.console.emit(body, table)
    return OK


def _pipeline_json(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "kind": pipeline.kind,
        "name": pipeline.name,
        "id": pipeline.id,
        "provisioningState": pipeline.provisioning_state,
        "storageAccessMode": pipeline.storage_access_mode,
        "storageUri": pipeline.storage_uri,
        "keyVaultUri": pipeline.key_vault_uri,
        "options": list(pipeline.options),
        "sourceTrigger": pipeline.source_trigger_status,
        "identityType": pipeline.identity_type,
        "principalId": pipeline.principal_id,
    }


def _delete_pipeline(invocation: Invocation) -> int:
    a = invocation.args
    deletion = invocation.service.delete_pipeline(a.kind, a.name, force=a.force)
    status = "deleted" if deletion.deleted else "deleting"
    body = {"kind": deletion.kind, "name": deletion.name, "id": deletion.id, "status": status}
    line = f"{deletion.kind} pipeline {deletion.name}: " + (
        "deleted" if deletion.deleted else "ARM is deleting it (`pipelines list` shows when it is gone)"
    )
    invocation.console.emit(body, lambda: [line])
    return OK


def _migrate(invocation: Invocation) -> int:
    a = invocation.args
    done = invocation.service.migrate_pipeline(a.kind, a.to)
    state, error = ("Succeeded" if done.outcome == "already" else "Accepted"), None
    if done.deployment and a.wait:
        state, error = wait_for_deployment(invocation, done.deployment)
    body: dict[str, Any] = {
        "kind": done.kind,
        "name": done.name,
        "outcome": done.outcome,
        "deployment": done.deployment,
        "provisioningState": state,
        "error": error,
        "storageRole": done.storage_role,
        "left": list(done.left),
    }
    lines = [
        f"{done.kind} pipeline {done.name}: "
        + (
            "already in ManagedIdentity mode"
            if done.outcome == "already"
            else f"deployment {done.deployment}"
        )
        + f": {state}"
        + (f": {error}" if error else ""),
        f"storage role: {done.storage_role}",
        *(f"left: {item}" for item in done.left),
    ]
    invocation.console.emit(body, lambda: lines)
    if state.lower() in ("failed", "canceled"):
        return FAILED
    return EXIT_TRANSIENT if a.wait and state.lower() not in DEPLOYMENT_TERMINAL else OK
