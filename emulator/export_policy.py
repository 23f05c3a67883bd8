"""A registry's export policy (`properties.policies.exportPolicy.status`, API 2021-06-01-preview on): when
`disabled`, export pipelines cannot be created; the status cannot change while export pipelines exist, and
it can be disabled only with public network access disabled (ACR's data-loss-prevention doc). The doc gives
no error text: the codes and messages here are the emulator's."""

from __future__ import annotations

from typing import Any

from emulator.arm_errors import bad_request

DOC = "https://aka.ms/acr/export-policy"


def status(properties: dict[str, Any]) -> str:
    policy = ((properties.get("policies") or {}).get("exportPolicy") or {}).get("status")
    return str(policy or "enabled").lower()


def with_defaults(properties: dict[str, Any]) -> dict[str, Any]:
    """The registry's properties as ARM answers them: exportPolicy (enabled by default) and public access."""
    policies = properties.setdefault("policies", {})
    policies.setdefault("exportPolicy", {"status": "enabled"})
    properties.setdefault("publicNetworkAccess", "Enabled")
    return properties


def check_registry_update(
    name: str, previous: dict[str, Any] | None, properties: dict[str, Any], export_pipelines: list[str]
) -> None:
    """Refuse a registry PUT that changes the export policy while export pipelines exist, or disables it while
    public network access is enabled."""
    before = status(previous or {}) if previous is not None else "enabled"
    after = status(properties)
    if after not in ("enabled", "disabled"):
        raise bad_request(
            f"The exportPolicy status '{after}' is not valid: enabled or disabled.",
            code="InvalidParameter",
            target="properties.policies.exportPolicy.status",
        )
    if after != before and export_pipelines:
        raise bad_request(
            f"The export policy of the registry '{name}' cannot be changed while it has export pipelines "
            f"({', '.join(export_pipelines)}). Delete them first. See {DOC}.",
            code="ExportPipelinesExist",
            target="properties.policies.exportPolicy.status",
        )
    if after == "disabled" and str(properties.get("publicNetworkAccess") or "Enabled").lower() != "disabled":
        raise bad_request(
            f"The export policy of the registry '{name}' can be disabled only when its public network access "
            f"is disabled (properties.publicNetworkAccess: Disabled). See {DOC}.",
            code="PublicNetworkAccessEnabled",
            target="properties.publicNetworkAccess",
        )


def check_export_pipeline(name: str, registry_properties: dict[str, Any]) -> None:
    if status(registry_properties) == "disabled":
        raise bad_request(
            f"Export pipelines cannot be created for the registry '{name}': its export policy is disabled "
            "(properties.policies.exportPolicy.status: disabled), which blocks exports of its artifacts. "
            f"See {DOC}.",
            code="ExportPolicyDisabled",
        )
