"""Known failure causes of ACR Transfer runs: a stable code (`errorCause`) and what to do (`hint`).

The official troubleshooting guide lists the causes (docs/service-facts.md) but not the service's exact
wording, so a cause is matched by the error codes ARM and the service send first and by their wording
second; the raw message is always kept beside it. Pure: the run's error text and codes in, a Cause or
None out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    code: str
    hint: str


KEY_VAULT_ACCESS = Cause(
    "KeyVaultAccessDenied",
    "Grant the pipeline's managed identity secret get on the Key Vault (an access policy, or the Key Vault "
    "Secrets User role on an RBAC vault).",
)
SAS_EXPIRED = Cause(
    "StorageSasExpired",
    "The SAS in the pipeline's Key Vault secret expired or the account keys were rotated: store a new SAS.",
)
SAS_PERMISSIONS = Cause(
    "StorageSasPermissions",
    "The SAS lacks a permission: an export needs read, write, list and add (sp=rwla); an import read and "
    "list, and delete with DeleteSourceBlobOnSuccess (sp=rld).",
)
SAS_RESOURCE_TYPES = Cause(
    "StorageSasResourceTypes",
    "An account SAS must allow the blob service (ss=b) and service, container and object resource types "
    "(srt=sco); a service SAS must be for the container (sr=c).",
)
KEY_VAULT_SECRET_MISSING = Cause(
    "KeyVaultSecretMissing",
    "The pipeline's keyVaultUri names no secret: store the SAS there, or redeploy the pipeline with the "
    "right secret name.",
)
SAS_HTTP = Cause("StorageSasNotHttpsOnly", "Make the SAS HTTPS-only (spr=https).")
PROTOCOL_MISMATCH = Cause(
    "StorageProtocolMismatch",
    "Storage was called over plain HTTP where the SAS (spr=https) or the account allows HTTPS only: give the "
    "pipeline the account's https:// container URI (pipelines deploy --storage-uri https://...).",
)
STORAGE_ROLE = Cause(
    "StorageRoleMissing",
    "In ManagedIdentity mode the pipeline's identity needs Storage Blob Data Contributor on the storage "
    "account: `python -m transfer pipelines show` prints its principal id.",
)
STORAGE_FORBIDDEN = Cause(
    "StorageAccessDenied",
    "Storage refused the pipeline: check the SAS (expiry, sp, srt=sco, spr=https) or, in ManagedIdentity "
    "mode, the identity's Storage Blob Data Contributor role.",
)
STORAGE_NETWORK = Cause(
    "StorageNetworkRestricted",
    "The pipeline's storage account refuses public networks (a firewall, publicNetworkAccess Disabled or "
    "private endpoints only). ACR Transfer is not a trusted Azure service for Storage, so no identity or SAS "
    "gets through today: allow public network access from all networks on the account the pipeline uses "
    "(a transfer account of its own keeps the rest locked down).",
)
KEY_VAULT_ROLE = Cause(
    "KeyVaultRoleMissing",
    "The vault uses Azure RBAC (enableRbacAuthorization), which ignores access policies: assign Key Vault "
    "Secrets User (4633458b-17de-408a-b874-0445c86b69e6) to the pipeline's identity on the vault or the "
    "secret (`pipelines deploy` does it when it finds an RBAC vault).",
)
EXPORT_POLICY = Cause(
    "ExportPolicyDisabled",
    "The registry's export policy is disabled (properties.policies.exportPolicy.status), which blocks "
    "export pipelines and their runs: enable it (az acr update --allow-exports true) where your "
    "organisation allows, or export from another registry. It cannot be changed while export pipelines "
    "exist.",
)
APP_ROLE = Cause(
    "TransferRoleMissing",
    "The app's identity may not manage pipelines or runs: assign it Container Registry Transfer Pipeline "
    "Contributor (bf94e731-3a51-4a7c-8c54-a1ab9971dfc1) on the registry, and a role with "
    "Microsoft.Resources/deployments/write on its resource group (runs are deployed as templates).",
)
CONTAINER_MISSING = Cause(
    "StorageContainerMissing", "Create the pipeline's storage container, or fix its URI."
)
BLOB_MISSING = Cause(
    "BlobMissing", "The transfer blob is not in the import pipeline's container: copy it there."
)
BLOB_EXISTS = Cause(
    "BlobExists", "A blob of that name exists: use another target name or the export option OverwriteBlobs."
)
ARTIFACT_MISSING = Cause(
    "ArtifactMissing", "An artifact is not in the source registry: check its repository, tag or digest."
)
TAG_EXISTS = Cause(
    "TagExists",
    "A tag exists in the target registry with another digest: add the import option OverwriteTags, or "
    "delete the tag.",
)
LAYER_TOO_LARGE = Cause("LayerTooLarge", "ACR Transfer moves layers up to 8 GB: split or slim the image.")
DEPLOYMENT_QUOTA = Cause(
    "DeploymentQuotaExceeded",
    "The resource group holds 800 deployments: run `python -m transfer cleanup` (or lower "
    "TRANSFER_RUN_RETENTION_HOURS).",
)
THROTTLED = Cause("Throttled", "ARM throttled the app: it retries on the next reconcile; nothing to do.")
TIMED_OUT = Cause(
    "TimedOut",
    "The run stayed active past TRANSFER_RUN_TIMEOUT_HOURS: look at the pipelineRun in the portal; "
    "cleanup deletes it.",
)

# Codes first: the deployment's and the provider's error codes (any level of the nested error).
_BY_CODE = {
    "deploymentquotaexceeded": DEPLOYMENT_QUOTA,
    "toomanyrequests": THROTTLED,
    "throttled": THROTTLED,
    "keyvaultaccessdenied": KEY_VAULT_ACCESS,
    "forbiddenbyrbac": KEY_VAULT_ROLE,
    "authorizationfailure": STORAGE_NETWORK,  # Storage's 403 of a firewall (not of a SAS or a role)
    "exportpolicydisabled": EXPORT_POLICY,
    "authorizationfailed": APP_ROLE,  # ARM's 403 for an action the caller may not perform
    "secretnotfound": KEY_VAULT_SECRET_MISSING,
    "authenticationfailed": SAS_EXPIRED,  # Storage's 403 for an expired SAS or rotated account keys
    "authorizationservicemismatch": SAS_RESOURCE_TYPES,
    "subscriptionrequeststhrottled": THROTTLED,
    "authorizationpermissionmismatch": SAS_PERMISSIONS,
    "authorizationresourcetypemismatch": SAS_RESOURCE_TYPES,
    "authorizationprotocolmismatch": PROTOCOL_MISMATCH,  # the request's protocol, not who made it
    "containernotfound": CONTAINER_MISSING,
    "blobnotfound": BLOB_MISSING,
    "blobalreadyexists": BLOB_EXISTS,
    "manifest_unknown": ARTIFACT_MISSING,
    "name_unknown": ARTIFACT_MISSING,
    "tag_unknown": ARTIFACT_MISSING,
}
# Then wording, most specific first (lower-case text, each pattern a regular expression).
_BY_WORDING: tuple[tuple[str, Cause], ...] = (
    (r"network-restricted|not authori[sz]ed to perform this operation\.?(?! using)", STORAGE_NETWORK),
    (r"export ?policy", EXPORT_POLICY),
    (r"does not have authori[sz]ation to perform action|scope is invalid", APP_ROLE),
    (r"key ?vault.*(403|forbidden|denied|not authori[sz]ed)|(403|forbidden).*key ?vault", KEY_VAULT_ACCESS),
    (r"signed expiry|sas.*expired|expired.*sas|token.*expired|keys? (were |was )?rotated", SAS_EXPIRED),
    (r"\bsrt\b|resource types?", SAS_RESOURCE_TYPES),
    (r"\bspr\b|https[- ]only|protocol", SAS_HTTP),
    (
        r"storage blob data contributor|role assignment|managed identity.*(403|forbidden|not authori[sz]ed)",
        STORAGE_ROLE,
    ),
    (r"permission|\bsp=|not authori[sz]ed to perform", SAS_PERMISSIONS),
    (r"8 ?gb|layer.*(size|too large|exceeds)", LAYER_TOO_LARGE),
    (r"overwritetags|tag .*(already )?exists", TAG_EXISTS),
    (r"overwriteblobs|blob .*already exists", BLOB_EXISTS),
    (r"container .*(does not exist|not found)", CONTAINER_MISSING),
    (r"blob .*(does not exist|not found)|specified blob does not exist", BLOB_MISSING),
    (
        r"manifest_unknown|name_unknown|artifact .*(not found|does not exist)|repository .*not found",
        ARTIFACT_MISSING,
    ),
    (r"800 deployments|deployment quota", DEPLOYMENT_QUOTA),
    (r"\b429\b|too many requests|throttl", THROTTLED),
    (r"\b403\b|forbidden|authorizationfailure", STORAGE_FORBIDDEN),
)
_WORDING = tuple((re.compile(pattern), cause) for pattern, cause in _BY_WORDING)
_CODE = re.compile(r"\b([A-Za-z_]+)\b")


def classify(
    message: str | None, codes: Iterable[str] = (), *, managed_identity: bool | None = False
) -> Cause | None:
    """The known cause of a failure, from its error codes first and its wording second; None if unknown.

    `message` is the run's error as recorded (ARM's "Code: message" parts or pipelineRunErrorMessage). The
    pipeline's storage access mode decides the family of a storage refusal: in ManagedIdentity mode a
    storage 403 means the identity's role, never a SAS; in SasToken mode (False) the SAS, never a role;
    None (the mode could not be read) keeps what the service's words matched.
    """
    text = (message or "").lower()
    for code in [*codes, *_CODE.findall(message or "")]:
        cause = _BY_CODE.get(code.lower())
        if cause is not None:
            return _in_mode(cause, managed_identity)
    for pattern, cause in _WORDING:
        if pattern.search(text):
            return _in_mode(cause, managed_identity)
    return None


def _in_mode(cause: Cause, managed_identity: bool | None) -> Cause:
    sas_causes = (SAS_EXPIRED, SAS_PERMISSIONS, SAS_RESOURCE_TYPES, SAS_HTTP, STORAGE_FORBIDDEN)
    if managed_identity and cause in sas_causes:
        return STORAGE_ROLE
    if managed_identity is False and cause is STORAGE_ROLE:
        return STORAGE_FORBIDDEN  # a SasToken pipeline's storage 403: its SAS, not a role
    return cause
