"""The shapes a ManagedIdentity pipeline may come back in (the troubleshooting guide): with a user-assigned
identity the top-level `identity.principalId` / `tenantId` may be null, and `keyVaultUri` may be null or
empty. Setting `managed_identity_answer_shape` picks one, so the app can be tested against each:
- "omitted" (default): the members are absent;
- "null": identity.principalId / tenantId null (user-assigned only), keyVaultUri null;
- "empty": the same, with keyVaultUri "".
"""

from __future__ import annotations

from typing import Any

SHAPES = ("omitted", "null", "empty")


def shape_pipeline(body: dict[str, Any], shape: str) -> None:
    """Apply the shape to a stored pipeline body (in place)."""
    if shape == "omitted":
        return
    identity = body.get("identity") or {}
    if "systemassigned" not in str(identity.get("type", "")).replace(" ", "").lower():
        identity.setdefault("principalId", None)
        identity.setdefault("tenantId", None)
    properties = body.get("properties") or {}
    for side in ("target", "source"):
        storage = properties.get(side)
        if isinstance(storage, dict) and storage.get("storageAccessMode") == "ManagedIdentity":
            storage["keyVaultUri"] = storage_key_vault_uri(shape)


def storage_key_vault_uri(shape: str) -> str | None:
    return "" if shape == "empty" else None
