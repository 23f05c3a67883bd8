"""Whether a pipeline's identity holds a blob data role on its storage account: the role check health and
the operators' `pipelines deploy` both make, written once."""

from __future__ import annotations

from dataclasses import dataclass

from transfer.domain.arm_views import RoleAssignment
from transfer.domain.errors import AccessDenied
from transfer.domain.ports import RoleAssignments

STORAGE_ROLE = "Storage Blob Data Contributor"


@dataclass(frozen=True)
class StorageRole:
    role: str | None = None  # the blob data role it holds, None when it holds none
    reach: str | None = None  # how the assignment reaches the account: account, container, group...
    unreadable: str | None = None  # why the assignments could not be read (then role is None too)


def storage_role(
    assignments: RoleAssignments, subscription_id: str, principal: str, account: str
) -> StorageRole:
    try:
        found = [RoleAssignment.from_arm(a) for a in assignments.role_assignments(principal)]
    except AccessDenied as exc:
        return StorageRole(unreadable=exc.message)
    for assignment in found:
        reach = assignment.covers_account(subscription_id, account) if assignment.role_name else None
        if reach:
            return StorageRole(assignment.role_name, reach)
    return StorageRole()
