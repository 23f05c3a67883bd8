"""The emulator as one object: builds the state, the resource types, the servers and background threads;
`start()` / `stop()` / `reset()`."""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.acr import (
    EXPORT_PIPELINES,
    IMPORT_PIPELINES,
    PIPELINE_RUNS,
    REGISTRIES,
    PipelineRuns,
    Pipelines,
    Registries,
)
from emulator.admin_api import AdminRoutes
from emulator.arm_errors import ApiError
from emulator.authorization import ROLE_ASSIGNMENTS, RoleAssignments
from emulator.clock import Clock
from emulator.deployments import Deployments
from emulator.events import (
    SUBSCRIPTIONS,
    SYSTEM_TOPICS,
    TOPIC_SUBSCRIPTIONS,
    Events,
    EventSubscriptions,
    SystemTopics,
)
from emulator.faults import Faults
from emulator.identities import USER_ASSIGNED, TokenEndpoint, UserAssignedIdentities
from emulator.permissions import ArmAccess, principal_of
from emulator.proxy import RegistryProxy
from emulator.registry_api import RegistryDataPlane
from emulator.resources import ResourceManager
from emulator.routes import ArmRoutes
from emulator.runner import Runner
from emulator.server import HttpsServer, Request, Response
from emulator.storage import StorageAccounts
from emulator.storage_front import StorageFront
from emulator.store import Config, State
from emulator.tls import Certificates, generate
from emulator.trigger import SourceTrigger
from emulator.vaults import ACCESS_POLICIES, VAULTS, AccessPolicies, KeyVault

log = logging.getLogger("emulator")


def blob_endpoint(connection_string: str) -> str:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    if "BlobEndpoint" in parts:
        return parts["BlobEndpoint"].rstrip("/")
    account = parts.get("AccountName", "devstoreaccount1")
    return f"http://127.0.0.1:10000/{account}"


class Emulator:
    def __init__(
        self,
        azurite_connection_string: str,
        *,
        port: int = 0,
        state_dir: Path | None = None,
        config: Config | None = None,
        identity_header: str | None = None,
    ) -> None:
        self.azurite_connection_string = azurite_connection_string
        if state_dir:
            self.state_dir = Path(state_dir)
            self._remove_state_dir: Callable[[], object] = lambda: None
        else:
            # A folder of its own, removed with everything in it (the TLS key) by stop(); failing that, when
            # this object is collected or the interpreter exits.
            self.state_dir = Path(tempfile.mkdtemp(prefix="acr-emulator-"))
            self._remove_state_dir = weakref.finalize(self, shutil.rmtree, self.state_dir, ignore_errors=True)
        self.config = config or Config()
        self.clock = Clock()
        self.state = State()
        self.stop_event = threading.Event()
        self.certificates: Certificates = generate(self.state_dir)
        self._context = self.certificates.server_context()
        self._vault_servers: dict[str, HttpsServer] = {}
        self._vault_lock = threading.Lock()

        self.resources = ResourceManager(self.state, self.config, self.clock)
        self.faults = Faults(self.state)
        self.tokens = TokenEndpoint(self.config, self.resources, identity_header)
        self.keyvault = KeyVault(self.state, self.config, self.clock, self.resources, self._listen_vault)
        self.registries = Registries(self.state, self.config, self.clock, self.resources)
        self.registry_api = RegistryDataPlane(self)  # the data plane: one HTTPS port per registry
        self.registries.listen = self.registry_api.listen
        self.events = Events(self.config, self.clock, self.stop_event)  # the registries' Event Grid events
        self.registries.listeners.append(self.events.publish)
        self.authorization = RoleAssignments(self.resources, self.clock)
        self.access = ArmAccess(self.state.lock, self.config, self.authorization)
        self.storage_accounts = StorageAccounts(
            self.state,
            self.config,
            self.resources,
            azurite_connection_string,
            blob_endpoint(azurite_connection_string),
        )
        self.runner = Runner(
            self.state,
            self.config,
            self.clock,
            self.registries,
            self.keyvault,
            self.faults,
            self.stop_event,
            self.storage_accounts,
            self.authorization,
        )
        self.runs = PipelineRuns(self.state, self.config, self.clock, self.resources, self.runner.start)
        pipelines = Pipelines(self.state, self.config, self.resources)
        self.resources.register(REGISTRIES, self.registries)
        self.resources.register(EXPORT_PIPELINES, pipelines, parent=REGISTRIES)
        self.resources.register(IMPORT_PIPELINES, pipelines, parent=REGISTRIES)
        self.resources.register(PIPELINE_RUNS, self.runs, parent=REGISTRIES)
        self.resources.register(VAULTS, self.keyvault)
        self.resources.register(ACCESS_POLICIES, AccessPolicies(self.resources), parent=VAULTS)
        self.resources.register(USER_ASSIGNED, UserAssignedIdentities(self.resources, self.config))
        self.resources.register(ROLE_ASSIGNMENTS, self.authorization)
        self.resources.register(SYSTEM_TOPICS, SystemTopics(self.resources, self.config))
        subscriptions = EventSubscriptions(self.resources, self.events)
        self.resources.register(TOPIC_SUBSCRIPTIONS, subscriptions, parent=SYSTEM_TOPICS)
        self.resources.register(SUBSCRIPTIONS, subscriptions)
        self.deployments = Deployments(self.state, self.config, self.clock, self.resources, self.stop_event)
        self.deployments.refuse_resource = self.access.template_resource
        self.deployments.refuse_write = self.access.resource_write
        self.trigger = SourceTrigger(
            self.state, self.config, self.clock, self.resources, self.runs, self.runner, self.stop_event
        )
        self.admin_routes = AdminRoutes(self)
        self.arm_routes = ArmRoutes(self)
        self._server = HttpsServer(self._context, self.arm_routes.dispatch, port)
        self.storage_front = StorageFront(self)  # Azurite's Blob service with Entra ID, over HTTPS
        self._front_server = HttpsServer(self._context, self.storage_front.dispatch, 0)
        self.storage_accounts.front = f"127.0.0.1:{self._front_server.port}"
        self.proxy = RegistryProxy(self._registry_port)
        self._started = False

    # --- what clients need

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def arm_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.certificates.ca_file

    @property
    def storage_front_endpoint(self) -> str:
        """`https://127.0.0.1:{port}`: an account's blob endpoint with Entra ID is `{this}/{account}`."""
        return f"https://127.0.0.1:{self._front_server.port}"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.arm_endpoint}{TokenEndpoint.PATH}"

    @property
    def identity_header(self) -> str:
        return self.tokens.secret

    def settings(self) -> dict[str, Any]:
        return {
            "TRANSFER_ARM_ENDPOINT": self.arm_endpoint,
            "EMULATOR_ARM_ENDPOINT": self.arm_endpoint,
            "EMULATOR_CA_FILE": str(self.ca_file),
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "AZURE_SUBSCRIPTION_ID": self.config.subscription_id,
            "AZURE_TENANT_ID": self.config.tenant_id,
            "TRANSFER_RESOURCE_GROUP": self.config.resource_group,
            "EMULATOR_APP_PRINCIPAL_ID": self.config.app_principal_id,
            "EMULATOR_STORAGE_FRONT": self.storage_front_endpoint,
            "AZURITE_CONNECTION_STRING": self.azurite_connection_string,
            "EMULATOR_STATE_DIR": str(self.state_dir),
            "EMULATOR_REGISTRY_PROXY": self.proxy.url,
            "EMULATOR_AZ_ENV": str(self.az_env_file),
            **{
                f"EMULATOR_REGISTRY_{name.upper()}_ENDPOINT": endpoint
                for name, endpoint in self.registry_api.endpoints().items()
            },
        }

    @property
    def az_env_file(self) -> Path:
        return self.state_dir / "az.env"

    def az_environment(self) -> dict[str, str]:
        """What the real Azure CLI needs to talk to this emulator (README: "Rehearse your az workflow"): the
        CA, the managed identity endpoint of `az login --identity`, the proxy to the registries' login
        servers (everything on 127.0.0.1 reached directly), and a configuration directory of its own, so
        the user's own az profile stays as it is."""
        return {
            "EMULATOR_ARM_ENDPOINT": self.arm_endpoint,
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "HTTPS_PROXY": self.proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "AZURE_CONFIG_DIR": str(self.state_dir / "azure"),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
        }

    def _registry_port(self, name: str) -> int | None:
        try:
            return int(self.registry_api.endpoint(name).rsplit(":", 1)[1])
        except ApiError:
            return None

    # --- lifecycle

    def start(self) -> Emulator:
        if self._started:
            return self
        self._started = True
        self._server.start()
        self._front_server.start()
        self.proxy.start()
        # A cloud registered by an earlier emulator points at its port: the CLI's directory starts afresh.
        shutil.rmtree(self.state_dir / "azure", ignore_errors=True)
        self.az_env_file.write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.az_environment().items()),
            encoding="utf-8",
        )
        self.trigger.start()
        self.events.start()
        log.info("ACR Transfer emulator listening on %s", self.arm_endpoint)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.trigger.poke()
        self.events.poke()
        with self.state.lock:
            self.state.changed.notify_all()
        self._server.stop()
        self._front_server.stop()
        self.proxy.stop()
        with self._vault_lock:
            servers = list(self._vault_servers.values())
            self._vault_servers.clear()
        for server in servers:
            server.stop()
        self.registry_api.stop()
        if self.trigger.thread.is_alive():
            self.trigger.thread.join(timeout=5)
        if self.events.thread.is_alive():
            self.events.thread.join(timeout=5)
        # The server is gone: its key goes too, and what pointed the Azure CLI at it (its identity header).
        self.certificates.key_file.unlink(missing_ok=True)
        self.az_env_file.unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "azure", ignore_errors=True)
        self._remove_state_dir()

    def reset(self) -> None:
        """Forget every resource, deployment, secret, fault and log entry; the clock goes back to now."""
        self.faults.clear()
        self.state.clear()
        self.registries.store.clear()
        self.access.clear()
        self.keyvault.keys.clear()
        self.events.clear()
        self.clock.reset()

    # --- Key Vault data plane: one HTTPS port per vault

    def _listen_vault(self, vault_name: str) -> int:
        with self._vault_lock:
            server = self._vault_servers.get(vault_name)
            if server is None:
                server = HttpsServer(self._context, self._vault_dispatch, 0)
                server.start()
                self._vault_servers[vault_name] = server
            return server.port

    def _vault_dispatch(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            error = ApiError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
            return Response(401, error.body(), self.keyvault.challenge(request.port))
        principal = principal_of(authorization, self.config.app_principal_id)
        status, body = self.keyvault.handle(
            request.port, request.method, request.path, request.json(), principal
        )
        return Response(status, body)
