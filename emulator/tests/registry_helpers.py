"""What the registry tests share: the SDK client, and the ACR token a raw request needs (for the routes the
SDK has no method for: the referrers API)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import requests
from azure.containerregistry import ContainerRegistryClient
from azure.core.credentials import AccessToken

from emulator.testing import RunningEmulator
from emulator.tests.helpers import StaticCredential

AUDIENCE = "https://containerregistry.azure.net"  # the SDK's default; any audience is accepted


def entra_jwt(oid: str, audience: str = AUDIENCE) -> str:
    """An Entra-like token that names its principal (`oid`); the emulator reads, never verifies, it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"oid": oid, "tid": "tenant", "aud": audience, "exp": int(time.time()) + 3600}
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class JwtCredential:
    def __init__(self, oid: str) -> None:
        self.oid = oid

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(entra_jwt(self.oid, scopes[0]), int(time.time()) + 3600)


def client(emulator: RunningEmulator, registry: str, credential: Any = None) -> ContainerRegistryClient:
    return ContainerRegistryClient(
        emulator.registry_endpoint(registry),
        credential or StaticCredential(),
        audience=AUDIENCE,
        connection_verify=emulator.ca_file,
    )


def access_token(emulator: RunningEmulator, registry: str, scope: str, entra: str = "entra-token") -> str:
    """The ACR access token for `scope` (`repository:samples/hello:pull`), as the SDK's challenge policy gets
    it: an Entra token exchanged for a refresh token, then for an access token."""
    endpoint = emulator.registry_endpoint(registry)
    host = endpoint.removeprefix("https://")
    refresh = requests.post(
        f"{endpoint}/oauth2/exchange",
        data={"grant_type": "access_token", "service": host, "tenant": "t", "access_token": entra},
        verify=emulator.ca_file,
        timeout=10,
    ).json()["refresh_token"]
    return str(
        requests.post(
            f"{endpoint}/oauth2/token",
            data={"grant_type": "refresh_token", "service": host, "scope": scope, "refresh_token": refresh},
            verify=emulator.ca_file,
            timeout=10,
        ).json()["access_token"]
    )


def get(
    emulator: RunningEmulator,
    registry: str,
    path: str,
    *,
    scope: str,
    entra: str = "entra-token",
    params: dict[str, str] | None = None,
    method: str = "GET",
) -> requests.Response:
    token = access_token(emulator, registry, scope, entra)
    return requests.request(
        method,
        emulator.registry_endpoint(registry) + path,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        verify=emulator.ca_file,
        timeout=10,
    )


def referrers(
    emulator: RunningEmulator,
    registry: str,
    repository: str,
    digest: str,
    *,
    entra: str = "entra-token",
    params: dict[str, str] | None = None,
) -> requests.Response:
    """GET /v2/{repo}/referrers/{digest} with a pull token, as oras / notation call it."""
    return get(
        emulator,
        registry,
        f"/v2/{repository}/referrers/{digest}",
        scope=f"repository:{repository}:pull",
        entra=entra,
        params=params,
    )
