"""The registry's data plane: repositories, tags and digests, read through azure-containerregistry.

`ContainerRegistryClient` is created on first use with the settings' endpoint (`TRANSFER_REGISTRY_ENDPOINT`,
by default the registry's login server) and the cloud's token audience (docs/service-facts.md: the
SDK's default for the public cloud, the cloud's ARM audience for the sovereign ones). It authenticates by
the registry's own challenge (an Entra token exchanged for an ACR token), page by page where it lists.

Its retry policy is the capped one every client has (adapters/retry.py): the data plane's 429 carries a
Retry-After counting down (ACR's published per-registry and per-identity limits); one that fits the wait is
waited out, a longer one is Throttled with its Retry-After.

Every SDK call runs inside sdk_errors' `translated`; a 401 or 403 says which role the app's identity lacks:
`AcrPull` on the registry (or Container Registry Repository Reader on registries with ABAC repository
permissions). azure-containerregistry loads lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from transfer.adapters.retry import capped_retry_policy
from transfer.adapters.sdk_errors import IGNORE, translated
from transfer.domain.errors import AccessDenied
from transfer.domain.records import TagInfo

if TYPE_CHECKING:
    from azure.containerregistry import ContainerRegistryClient
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.policies import RetryPolicy

PAGE_SIZE = 100
ROLE = "AcrPull"
ROLE_HINT = (
    f"the app's identity needs {ROLE} on the registry (Container Registry Repository Reader where the "
    "registry uses ABAC repository permissions)"
)


class AzureRegistry:
    """Registry on one registry's data plane."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        audience: str,
        page_size: int = PAGE_SIZE,
        connection_verify: bool | str | None = None,
        retry_policy: Callable[[], RetryPolicy] | None = None,
    ) -> None:
        """`retry_policy` makes the client's policy (default `capped_retry_policy`): a 429 whose
        Retry-After fits its wait is waited out; a longer one comes back at once as Throttled with the
        Retry-After, so a listing never sleeps past its invocation's budget."""
        self._endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._audience = audience.rstrip("/")
        self._page_size = page_size
        self._options: dict[str, Any] = {}
        if connection_verify is not None:
            self._options["connection_verify"] = connection_verify
        self._retry_policy = retry_policy or capped_retry_policy
        self._client: ContainerRegistryClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureRegistry({self._endpoint!r})"

    def _registry(self) -> ContainerRegistryClient:
        with self._lock:
            if self._client is None:
                from azure.containerregistry import ContainerRegistryClient

                self._client = ContainerRegistryClient(
                    self._endpoint,
                    self._credential,
                    audience=self._audience,
                    retry_policy=self._retry_policy(),
                    **self._options,
                )
            return self._client

    @contextmanager
    def _call(self, what: str, *, absent_is_none: bool = False) -> Iterator[Any]:
        """`translated`, with the missing role named on a 401 / 403."""
        full = f"registry {self._endpoint}: {what}"
        try:
            with translated(full, absent=IGNORE if absent_is_none else None) as call:
                yield call
        except AccessDenied as exc:
            raise AccessDenied(f"{exc.message}; {ROLE_HINT}") from None

    def repositories(self) -> Iterator[str]:
        with self._call("listing repositories"):
            for name in self._registry().list_repository_names(results_per_page=self._page_size):
                yield str(name)

    def tags(self, repository: str) -> Iterator[TagInfo]:
        with self._call(f"listing the tags of {repository}", absent_is_none=True):
            pages = self._registry().list_tag_properties(repository, results_per_page=self._page_size)
            for tag in pages:
                updated = tag.last_updated_on
                yield TagInfo(
                    name=str(tag.name),
                    digest=str(tag.digest),
                    last_updated=updated if isinstance(updated, datetime) else None,
                )

    def digest(self, repository: str, tag: str) -> str | None:
        with self._call(f"reading {repository}:{tag}", absent_is_none=True) as call:
            properties = self._registry().get_tag_properties(repository, tag)
        return None if call.ignored else str(properties.digest)
