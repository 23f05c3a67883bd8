"""The resource types the emulator models, with the API versions each accepts: the one table ARM requests
are checked against.

A request on anything else is answered as ARM answers a type it does not know: an unknown namespace is
400 `InvalidResourceNamespace`, an unknown type of a known namespace 404 `InvalidResourceType`, a known
type at a version it does not have 400 `NoRegisteredProviderFound` naming the versions it has. Never a
silent 200: a DELETE of a Key Vault access policy at the pipelines' `2025-06-01-preview` (what the guide's
`az resource delete` does when `outputResources[1]` is the policy) is refused as on Azure.

The versions are the published ones of each provider (its REST API specs), at least every version the
official templates, this repository's templates and `infra/`, the recorded traffic and the Azure CLI
(2.91.0) use. The pipeline types take theirs from the setting `pipeline_api_versions` (the live service's
list by default), as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emulator.arm_errors import ApiError

API_VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(-[a-z]+)?$")
PIPELINE_VERSIONS = ()  # the pipeline types: the setting pipeline_api_versions


def _versions(text: str) -> tuple[str, ...]:
    return tuple(text.split())


STORAGE = _versions(
    "2016-01-01 2016-05-01 2016-12-01 2017-06-01 2017-10-01 2018-02-01 2018-03-01-preview 2018-07-01 "
    "2018-11-01 2019-04-01 2019-06-01 2020-08-01-preview 2021-01-01 2021-02-01 2021-04-01 2021-06-01 "
    "2021-08-01 2021-09-01 2022-05-01 2022-09-01 2023-01-01 2023-04-01 2023-05-01 2024-01-01 2025-01-01 "
    "2025-06-01 2025-08-01"
)
KEY_VAULT = _versions(
    "2015-06-01 2016-10-01 2018-02-14 2019-09-01 2020-04-01-preview 2021-04-01-preview 2021-06-01-preview "
    "2021-10-01 2021-11-01-preview 2022-02-01-preview 2022-07-01 2022-11-01 2023-02-01 2023-07-01 "
    "2024-04-01-preview 2024-11-01 2024-12-01-preview 2025-05-01 2026-02-01"
)
REGISTRY = _versions(
    "2017-03-01 2017-10-01 2019-05-01 2019-12-01-preview 2020-11-01-preview 2021-06-01-preview "
    "2021-08-01-preview 2021-09-01 2021-12-01-preview 2022-02-01-preview 2022-12-01 2023-01-01-preview "
    "2023-06-01-preview 2023-07-01 2023-08-01-preview 2023-11-01-preview 2024-11-01-preview "
    "2025-03-01-preview 2025-04-01 2025-05-01-preview 2025-06-01-preview 2025-11-01 2026-01-01-preview "
    "2026-03-01-preview 2026-09-01-preview"
)
IDENTITY = _versions(
    "2015-08-31-preview 2018-11-30 2021-09-30-preview 2022-01-31-preview 2023-01-31 2023-07-31-preview "
    "2024-11-30 2025-01-31-preview 2025-05-31-preview"
)
AUTHORIZATION = _versions(
    "2015-07-01 2017-05-01 2018-01-01-preview 2018-09-01-preview 2020-03-01-preview 2020-04-01-preview "
    "2020-08-01-preview 2020-10-01-preview 2021-04-01-preview 2022-01-01-preview 2022-04-01 "
    "2022-05-01-preview"
)
WEB = _versions(
    "2016-08-01 2018-02-01 2018-11-01 2019-08-01 2020-06-01 2020-09-01 2020-10-01 2020-12-01 2021-01-01 "
    "2021-01-15 2021-02-01 2021-03-01 2022-03-01 2022-09-01 2023-01-01 2023-12-01 2024-04-01 2024-11-01 "
    "2025-03-01 2025-05-01"
)
INSIGHTS_COMPONENTS = _versions("2014-04-01 2015-05-01 2018-05-01-preview 2020-02-02 2020-02-02-preview")
ACTION_GROUPS = _versions(
    "2017-04-01 2018-03-01 2018-09-01 2019-03-01 2019-06-01 2021-09-01 2022-04-01 2022-06-01 2023-01-01 "
    "2023-09-01-preview 2024-10-01-preview"
)
SCHEDULED_QUERY_RULES = _versions(
    "2018-04-16 2020-05-01-preview 2021-02-01-preview 2021-08-01 2022-06-15 2022-08-01-preview "
    "2023-03-15-preview 2023-12-01 2024-01-01-preview 2025-01-01-preview"
)
LOG_ANALYTICS = _versions(
    "2015-11-01-preview 2020-03-01-preview 2020-08-01 2020-10-01 2021-06-01 2021-12-01-preview 2022-10-01 "
    "2023-09-01 2025-02-01"
)
EVENT_GRID = _versions(
    "2020-04-01-preview 2020-10-15-preview 2021-06-01-preview 2021-10-15-preview 2021-12-01 2022-06-15 "
    "2023-06-01-preview 2023-12-15-preview 2024-06-01-preview 2024-12-15-preview 2025-02-15"
)
DEPLOYMENTS = _versions(
    "2016-09-01 2017-05-10 2018-05-01 2019-05-01 2019-05-10 2019-08-01 2019-10-01 2020-06-01 2020-10-01 "
    "2021-01-01 2021-04-01 2022-09-01 2023-07-01 2024-03-01 2024-07-01 2024-11-01 2025-03-01 2025-04-01"
)


@dataclass(frozen=True)
class ModelledType:
    name: str  # Namespace/type[/child...]
    api_versions: tuple[str, ...]  # empty: the setting pipeline_api_versions
    behaviour: str


TYPES: tuple[ModelledType, ...] = (
    ModelledType(
        "Microsoft.ContainerRegistry/registries", REGISTRY, "loginServer, Premium; content and data plane"
    ),
    ModelledType(
        "Microsoft.ContainerRegistry/registries/exportPipelines", PIPELINE_VERSIONS, "validated; runs export"
    ),
    ModelledType(
        "Microsoft.ContainerRegistry/registries/importPipelines",
        PIPELINE_VERSIONS,
        "validated; source trigger",
    ),
    ModelledType("Microsoft.ContainerRegistry/registries/pipelineRuns", PIPELINE_VERSIONS, "validated; runs"),
    ModelledType("Microsoft.KeyVault/vaults", KEY_VAULT, "vaultUri = a data plane of this emulator"),
    ModelledType("Microsoft.KeyVault/vaults/accessPolicies", KEY_VAULT, "add / replace / remove"),
    ModelledType("Microsoft.KeyVault/vaults/secrets", KEY_VAULT, "stored as sent"),
    ModelledType("Microsoft.ManagedIdentity/userAssignedIdentities", IDENTITY, "principalId, clientId"),
    ModelledType("Microsoft.Authorization/roleAssignments", AUTHORIZATION, "checked; read by the pipelines"),
    ModelledType("Microsoft.Authorization/roleDefinitions", AUTHORIZATION, "stored as sent"),
    ModelledType("Microsoft.Authorization/permissions", AUTHORIZATION, "listed at a scope"),
    ModelledType("Microsoft.Storage/storageAccounts", STORAGE, "stored; the scope of role assignments"),
    ModelledType("Microsoft.Storage/storageAccounts/blobServices", STORAGE, "stored as sent"),
    ModelledType("Microsoft.Storage/storageAccounts/blobServices/containers", STORAGE, "stored as sent"),
    ModelledType("Microsoft.Storage/storageAccounts/queueServices", STORAGE, "stored as sent"),
    ModelledType("Microsoft.Storage/storageAccounts/queueServices/queues", STORAGE, "stored as sent"),
    ModelledType("Microsoft.Storage/storageAccounts/tableServices", STORAGE, "stored as sent"),
    ModelledType("Microsoft.Storage/storageAccounts/tableServices/tables", STORAGE, "stored as sent"),
    ModelledType("Microsoft.Web/serverfarms", WEB, "stored as sent"),
    ModelledType("Microsoft.Web/sites", WEB, "stored as sent"),
    ModelledType("Microsoft.Web/sites/config", WEB, "stored as sent"),
    ModelledType("Microsoft.Web/sites/basicPublishingCredentialsPolicies", WEB, "stored as sent"),
    ModelledType("Microsoft.Web/sites/host", WEB, "listKeys: generated host keys"),
    ModelledType("Microsoft.Insights/components", INSIGHTS_COMPONENTS, "stored as sent"),
    ModelledType("Microsoft.Insights/actionGroups", ACTION_GROUPS, "stored as sent"),
    ModelledType("Microsoft.Insights/scheduledQueryRules", SCHEDULED_QUERY_RULES, "stored as sent"),
    ModelledType("Microsoft.OperationalInsights/workspaces", LOG_ANALYTICS, "stored as sent"),
    ModelledType("Microsoft.EventGrid/systemTopics", EVENT_GRID, "a registry's events (events.py)"),
    ModelledType(
        "Microsoft.EventGrid/systemTopics/eventSubscriptions", EVENT_GRID, "WebHook delivery (events.py)"
    ),
    ModelledType(
        "Microsoft.EventGrid/eventSubscriptions", EVENT_GRID, "on a registry (extension): WebHook delivery"
    ),
    ModelledType("Microsoft.Resources/deployments", DEPLOYMENTS, "deployed (nested in a template too)"),
)

_BY_NAME = {t.name.lower(): t for t in TYPES}
_NAMESPACES = {t.name.split("/", 1)[0].lower() for t in TYPES}


def find(resource_type: str) -> ModelledType | None:
    return _BY_NAME.get(resource_type.strip("/").lower())


def versions_of(modelled: ModelledType, pipeline_versions: Sequence[str]) -> tuple[str, ...]:
    return modelled.api_versions or tuple(pipeline_versions)


def check(resource_type: str, api_version: str, pipeline_versions: Sequence[str], location: str) -> None:
    """Refuse, as ARM does, a type the emulator does not model or an API version the type does not have."""
    resource_type = resource_type.strip("/")
    namespace, _, rest = resource_type.partition("/")
    modelled = find(resource_type)
    if modelled is None:
        if namespace.lower() not in _NAMESPACES:
            raise ApiError(
                400, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid."
            )
        raise ApiError(
            404,
            "InvalidResourceType",
            f"The resource type '{rest}' could not be found in the namespace '{namespace}' for api version "
            f"'{api_version}'.",
        )
    supported = versions_of(modelled, pipeline_versions)
    listed = ", ".join(supported)
    if not API_VERSION_FORMAT.match(api_version):
        raise ApiError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. The supported versions are '{listed}'. Please see "
            "https://aka.ms/arm-api-versions for usage details.",
        )
    if api_version not in supported:
        raise ApiError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{location}' and API version "
            f"'{api_version}' for type '{rest}'. The supported api-versions are '{listed}'. The supported "
            f"locations are '{location}'.",
        )


def provider(
    subscription_id: str, namespace: str, pipeline_versions: Sequence[str], location: str
) -> dict[str, Any]:
    """`GET /subscriptions/{s}/providers/{namespace}`: the namespace's modelled types and their versions
    (what `az resource` reads when no --api-version is given)."""
    prefix = namespace.lower() + "/"
    types = [t for t in TYPES if t.name.lower().startswith(prefix)]
    if not types:
        raise ApiError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
    return {
        "id": f"/subscriptions/{subscription_id}/providers/{types[0].name.split('/', 1)[0]}",
        "namespace": types[0].name.split("/", 1)[0],
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {
                "resourceType": t.name.split("/", 1)[1],
                "locations": [location],
                "apiVersions": sorted(versions_of(t, pipeline_versions), reverse=True),
                "capabilities": "None",
            }
            for t in types
        ],
    }
