"""ARM resource ids: parsing, canonical keys (ids are case-insensitive) and building."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceId:
    subscription_id: str
    resource_group: str  # "" for subscription-level resources
    namespace: str
    types: tuple[str, ...]  # e.g. ("registries", "exportPipelines")
    names: tuple[str, ...]  # e.g. ("myreg", "mypipeline")
    scope: str  # the part before "/providers/{namespace}" (an extension resource's parent id)

    @property
    def type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def full_name(self) -> str:
        return "/".join(self.names)

    @property
    def id(self) -> str:
        segments = "".join(f"/{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return f"{self.scope}/providers/{self.namespace}{segments}"

    @property
    def key(self) -> str:
        return key(self.id)

    @property
    def parent(self) -> ResourceId | None:
        if len(self.types) < 2:
            return None
        return ResourceId(
            self.subscription_id,
            self.resource_group,
            self.namespace,
            self.types[:-1],
            self.names[:-1],
            self.scope,
        )

    def child(self, child_type: str, name: str) -> ResourceId:
        return ResourceId(
            self.subscription_id,
            self.resource_group,
            self.namespace,
            (*self.types, child_type),
            (*self.names, name),
            self.scope,
        )

    def is_type(self, resource_type: str) -> bool:
        return self.type.lower() == resource_type.lower()


def key(resource_id: str) -> str:
    return resource_id.rstrip("/").lower()


def parse(resource_id: str) -> ResourceId | None:
    """Parse `/subscriptions/{s}[/resourceGroups/{rg}]/providers/{ns}/{type}/{name}[/{type}/{name}...]`.

    Extension resources (`.../providers/A/x/y/providers/B/t/n`) parse as type `B/t` with `scope` the parent.
    Returns None when the path is not a resource id.
    """
    parts = [p for p in resource_id.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        return None
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return None
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[at + 1 :]
    if len(rest) < 3 or len(rest) % 2 == 0:
        return None
    namespace, pairs = rest[0], rest[1:]
    scope = "/" + "/".join(parts[:at])
    group = ""
    if len(parts) >= 4 and lowered[2] == "resourcegroups":
        group = parts[3]
    return ResourceId(parts[1], group, namespace, tuple(pairs[0::2]), tuple(pairs[1::2]), scope)


def group_id(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
