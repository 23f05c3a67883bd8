"""Known failure causes (codes first, wording second) and the SAS requirements checked before a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from transfer.domain import causes, sas

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GOOD_EXPORT = "sv=2024-11-04&sr=c&sp=rwla&spr=https&se=2027-01-01T00:00:00Z&sig=SECRET"


@pytest.mark.parametrize(
    ("message", "codes", "expected"),
    [
        ("DeploymentQuotaExceeded: the group holds 800 deployments", (), causes.DEPLOYMENT_QUOTA),
        ("anything", ("DeploymentQuotaExceeded",), causes.DEPLOYMENT_QUOTA),
        ("Failed to read the secret: 403 Forbidden from Key Vault", (), causes.KEY_VAULT_ACCESS),
        ("AuthorizationPermissionMismatch: This request is not authorized", (), causes.SAS_PERMISSIONS),
        ("Signed expiry time [Mon] must be after signed start time", (), causes.SAS_EXPIRED),
        ("AuthorizationResourceTypeMismatch: ...", (), causes.SAS_RESOURCE_TYPES),
        ("AuthorizationProtocolMismatch: ...", (), causes.PROTOCOL_MISMATCH),
        (
            "The container 'transfer' of 'https://a.blob.core.windows.net' does not exist.",
            (),
            causes.CONTAINER_MISSING,
        ),
        ("BlobNotFound: The specified blob does not exist.", (), causes.BLOB_MISSING),
        ("MANIFEST_UNKNOWN: manifest tagged by 'v9' is not found", (), causes.ARTIFACT_MISSING),
        ("The tag 'app:v1' already exists with another digest; use OverwriteTags", (), causes.TAG_EXISTS),
        ("The blob already exists; set OverwriteBlobs", (), causes.BLOB_EXISTS),
        ("Layer sha256:abc exceeds the maximum layer size of 8 GB", (), causes.LAYER_TOO_LARGE),
        ("429 Too Many Requests", (), causes.THROTTLED),
        # the emulator's wording, which quotes Storage's and Key Vault's own codes and texts
        (
            "Access to container 'transfer' with the SAS token of Key Vault secret 'https://v/s' failed: "
            "storage account 'a' answered 403 AuthenticationFailed: Signed expiry time must be after now",
            (),
            causes.SAS_EXPIRED,
        ),
        (
            "Access to container 't' with the SAS token of Key Vault secret 'x' failed: storage account 'a' "
            "answered 403 AuthorizationServiceMismatch: This request is not authorized",
            (),
            causes.SAS_RESOURCE_TYPES,
        ),
        (
            "403 Forbidden (ForbiddenByRbac): Caller is not authorized to perform action on resource",
            (),
            causes.KEY_VAULT_ROLE,  # an RBAC vault: the role, not an access policy,
        ),
        (
            "404 SecretNotFound: A secret with (name/id) transfersas was not found",
            (),
            causes.KEY_VAULT_SECRET_MISSING,
        ),
        ("SubscriptionRequestsThrottled: Number of requests exceeded the limit", (), causes.THROTTLED),
        ("Something unheard of", (), None),
        (None, (), None),
    ],
)
def test_causes_by_code_then_wording(message: str | None, codes: tuple[str, ...], expected: object) -> None:
    assert causes.classify(message, codes) == expected


def test_a_storage_403_in_managed_identity_mode_is_the_identitys_role() -> None:
    message = "AuthorizationPermissionMismatch: 403 This request is not authorized to perform this operation"
    assert causes.classify(message) == causes.SAS_PERMISSIONS
    assert causes.classify(message, managed_identity=True) == causes.STORAGE_ROLE
    assert causes.classify("403 Forbidden", managed_identity=True) == causes.STORAGE_ROLE
    assert causes.classify("Key Vault 403 Forbidden", managed_identity=True) == causes.KEY_VAULT_ACCESS


def test_every_cause_has_a_stable_code_and_a_hint() -> None:
    known = [v for v in vars(causes).values() if isinstance(v, causes.Cause)]
    assert len({c.code for c in known}) == len(known)
    assert all(c.hint.endswith((".", ")")) for c in known)


def shortfall_causes(
    token: str, kind: str = "export", options: tuple[str, ...] = (), expires: datetime | None = None
):
    return [s.cause for s in sas.shortfalls(token, kind=kind, options=options, expires_at=expires, now=NOW)]


def test_a_good_sas_has_no_shortfall() -> None:
    assert shortfall_causes(GOOD_EXPORT, expires=NOW + timedelta(days=30)) == []
    assert shortfall_causes(GOOD_EXPORT.replace("sp=rwla", "sp=rl"), "import") == []


@pytest.mark.parametrize(
    ("token", "kind", "options", "cause", "fragment"),
    [
        (GOOD_EXPORT.replace("sp=rwla", "sp=rwl"), "export", (), causes.SAS_PERMISSIONS, "lacks add"),
        (
            GOOD_EXPORT.replace("sp=rwla", "sp=rl"),
            "import",
            ("DeleteSourceBlobOnSuccess",),
            causes.SAS_PERMISSIONS,
            "lacks delete",
        ),
        (GOOD_EXPORT.replace("spr=https", "spr=https,http"), "export", (), causes.SAS_HTTP, "spr=https"),
        (GOOD_EXPORT.replace("&spr=https", ""), "export", (), causes.SAS_HTTP, "not HTTPS-only"),
        (GOOD_EXPORT + "&ss=b&srt=o", "export", (), causes.SAS_RESOURCE_TYPES, "lacks resource types sc"),
        (GOOD_EXPORT + "&ss=q&srt=sco", "export", (), causes.SAS_PERMISSIONS, "blob service"),
    ],
)
def test_each_shortfall_is_named(
    token: str, kind: str, options: tuple[str, ...], cause: causes.Cause, fragment: str
) -> None:
    found = sas.shortfalls(token, kind=kind, options=options, expires_at=None, now=NOW)
    assert [s.cause for s in found] == [cause]
    assert fragment in found[0].message
    assert "SECRET" not in found[0].message


def test_an_expired_sas_is_a_shortfall() -> None:
    found = sas.shortfalls(
        GOOD_EXPORT, kind="export", options=(), expires_at=NOW - timedelta(seconds=1), now=NOW
    )
    assert [s.cause for s in found] == [causes.SAS_EXPIRED]


def test_a_local_emulators_http_container_needs_no_https_only_sas() -> None:
    token = GOOD_EXPORT.replace("&spr=https", "")
    assert shortfall_causes(token) == [causes.SAS_HTTP]
    assert sas.shortfalls(token, kind="export", options=(), expires_at=None, now=NOW, https_only=False) == []


def test_a_storage_refusal_is_judged_in_the_pipelines_family_never_the_other() -> None:
    identity_words = "This request is not authorized: the managed identity got 403 Forbidden"
    assert causes.classify(identity_words, managed_identity=False) == causes.STORAGE_FORBIDDEN  # was the role
    assert causes.classify(identity_words, managed_identity=True) == causes.STORAGE_ROLE
    assert causes.classify(identity_words, managed_identity=None) == causes.STORAGE_ROLE  # as the words say
    assert causes.classify("AuthenticationFailed", managed_identity=None) == causes.SAS_EXPIRED


def test_a_protocol_mismatch_is_the_protocol_in_either_mode_never_the_identity() -> None:
    message = (
        "Forbidden (403): AuthorizationProtocolMismatch: This request is not authorized to perform this "
        "operation using this protocol."
    )
    for managed_identity in (False, True):
        cause = causes.classify(message, managed_identity=managed_identity)
        assert cause == causes.PROTOCOL_MISMATCH
        assert cause is not None
        assert "https://" in cause.hint
        assert "identity" not in cause.hint
