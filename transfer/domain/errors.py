"""Errors the service raises; entry points map `code` to HTTP statuses and exit codes."""

from __future__ import annotations


class TransferError(Exception):
    """Base error: a stable machine-readable code, a message safe to show, and what it is about."""

    code = "InternalError"
    # What the failing service said, where it said it: every error code of its answer (nested ones too)
    # and its correlation id, which the troubleshooting guide asks for.
    service_codes: tuple[str, ...] = ()
    correlation_id: str | None = None

    def __init__(self, message: str, *, target: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        if code is not None:
            self.code = code


class InvalidInput(TransferError):
    code = "InvalidInput"


class NotFound(TransferError):
    code = "NotFound"


class Conflict(TransferError):
    code = "Conflict"


class PreconditionFailed(Conflict):
    """An ETag-conditional write lost the race: someone else changed the record or blob first."""

    code = "PreconditionFailed"


class AlreadyExists(Conflict):
    code = "AlreadyExists"


class NotConfigured(TransferError):
    """This instance lacks the settings for the requested role (for example, no import pipeline)."""

    code = "NotConfigured"


class AccessDenied(NotConfigured):
    """A service refused this instance's identity (401 / 403): a role it lacks, which the message names."""

    code = "AccessDenied"


class PipelineNotReady(NotConfigured):
    """The pipeline would fail a run as it is set up now (its SAS lacks a permission, say): fix it first."""

    code = "PipelineNotReady"


class Throttled(TransferError):
    code = "Throttled"

    def __init__(self, message: str, *, retry_after: float | None = None, target: str | None = None) -> None:
        super().__init__(message, target=target)
        self.retry_after = retry_after


class Unavailable(TransferError):
    """A dependency (ARM, storage, Key Vault) failed transiently; the caller may retry later."""

    code = "Unavailable"


class SettingsError(TransferError):
    code = "InvalidSettings"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings: " + "; ".join(problems))
        self.problems = problems
