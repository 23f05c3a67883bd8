"""Deploying the export and import pipelines from templates/ (`python -m transfer pipelines deploy`), and
reading them and their deployments back."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from transfer.domain import naming
from transfer.domain.arm_views import (
    EXPORT_OPTIONS,
    EXPORT_PIPELINE,
    IMPORT_OPTIONS,
    IMPORT_PIPELINE,
    STORAGE_ACCESS_MODES,
    DeploymentState,
    Pipeline,
    pipeline_parameters,
)
from transfer.domain.errors import InvalidInput, NotFound
from transfer.domain.ports import Deployments, TemplateSource
from transfer.domain.settings import Settings
from transfer.service.pipelines import Pipelines
from transfer.service.readiness import Readiness

log = logging.getLogger("transfer")

KEY_VAULT_ACCESS = ("AccessPolicy", "RoleAssignment", "None")


@dataclass(frozen=True)
class PipelineSpec:
    """What a person chooses when deploying a pipeline; the names come from the settings."""

    storage_uri: str
    storage_access_mode: str = "SasToken"
    key_vault_name: str = ""
    sas_secret_name: str = ""
    options: tuple[str, ...] = ()
    source_trigger: bool = True
    user_assigned_identity: str = ""
    grant_storage_role: bool = False  # ManagedIdentity mode, the account in the registry's resource group
    # SasToken mode: how the pipeline identity may read the secret (the template's keyVaultSecretAccess):
    # AccessPolicy, RoleAssignment (Key Vault Secrets User, for an RBAC vault) or None; "" detects it.
    key_vault_access: str = ""

    def parameters(self, kind: str, registry: str, pipeline: str) -> dict[str, Any]:
        """The pipeline template's parameters, after refusing what the service would refuse."""
        allowed = EXPORT_OPTIONS if kind == "export" else IMPORT_OPTIONS
        if self.storage_access_mode not in STORAGE_ACCESS_MODES:
            raise InvalidInput(
                f"must be one of {', '.join(STORAGE_ACCESS_MODES)}", target="storageAccessMode"
            )
        for index, option in enumerate(self.options):
            if option not in allowed:
                raise InvalidInput(
                    f"{option!r} is not one of {', '.join(allowed)}", target=f"options[{index}]"
                )
        if not self.storage_uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise InvalidInput("must be the storage container's URL", target="storageUri")
        if self.key_vault_access not in ("", *KEY_VAULT_ACCESS):
            raise InvalidInput(f"must be one of {', '.join(KEY_VAULT_ACCESS)}", target="keyVaultSecretAccess")
        if self.storage_access_mode == "SasToken" and not (self.key_vault_name and self.sas_secret_name):
            raise InvalidInput(
                "SasToken mode needs the Key Vault name and the SAS secret name", target="keyVault"
            )
        if (
            self.user_assigned_identity
            and "/userassignedidentities/" not in self.user_assigned_identity.lower()
        ):
            raise InvalidInput("must be a user-assigned identity resource ID", target="userAssignedIdentity")
        return pipeline_parameters(
            kind,
            registry=registry,
            pipeline=pipeline,
            storage_uri=self.storage_uri,
            storage_access_mode=self.storage_access_mode,
            key_vault_name=self.key_vault_name,
            sas_secret_name=self.sas_secret_name,
            options=self.options,
            user_assigned_identity=self.user_assigned_identity,
            source_trigger=self.source_trigger,
            grant_storage_role=self.grant_storage_role,
            key_vault_access=self.key_vault_access or "AccessPolicy",
        )


def pipeline_deployment(kind: str, name: str) -> str:
    return f"{naming.DEPLOYMENT_PREFIX}{kind}-pipeline-{name}"


class PipelineAdmin:
    def __init__(
        self,
        settings: Settings,
        deployments: Deployments,
        templates: TemplateSource,
        pipelines: Pipelines,
        tenant: Readiness | None = None,
    ) -> None:
        self.tenant = tenant
        self.settings = settings
        self.deployments = deployments
        self.templates = templates
        self.pipelines = pipelines

    def deploy(self, kind: str, spec: PipelineSpec) -> str:
        """Start deploying the export or import pipeline from templates/; returns the deployment name."""
        return self.begin(kind, self.prepare(kind, spec))

    def prepare(self, kind: str, spec: PipelineSpec) -> dict[str, Any]:
        """The template's parameters, after refusing what the service or the tenant would refuse: nothing
        is written to ARM yet. An RBAC vault gets the Key Vault Secrets User grant unless `spec` chose."""
        name = self.pipelines.name(kind)
        if spec.storage_access_mode == "SasToken" and not spec.key_vault_access and self.tenant is not None:
            rbac = self.tenant.vault_uses_rbac(spec.key_vault_name)  # None: unreadable, the default grant
            spec = replace(spec, key_vault_access="RoleAssignment" if rbac else "AccessPolicy")
            log.info("vault %s: granting by %s", spec.key_vault_name, spec.key_vault_access)
        parameters = spec.parameters(kind, self.settings.registry, name)
        if self.tenant is not None:
            found = self.tenant.findings(kind, None, storage_uri=spec.storage_uri)
            self.tenant.refuse_blocked(kind, found, f"the {kind} pipeline cannot work here")
        return parameters

    def begin(self, kind: str, parameters: dict[str, Any]) -> str:
        name = self.pipelines.name(kind)
        deployment = pipeline_deployment(kind, name)
        template = self.templates.load(EXPORT_PIPELINE if kind == "export" else IMPORT_PIPELINE)
        self.deployments.begin_deployment(deployment, template, parameters)
        self.pipelines.forget(kind)
        log.info("pipeline deployment started: %s", deployment, extra={"pipeline": name})
        return deployment

    def deployment(self, name: str) -> DeploymentState:
        state = self.deployments.get_deployment(name)
        if state is None:
            raise NotFound(f"no deployment {name}", target="deployment")
        return state

    def pipeline(self, kind: str) -> Pipeline:
        self.pipelines.name(kind)
        return self.pipelines.get(kind, fresh=True)
