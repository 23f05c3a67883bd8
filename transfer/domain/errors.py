"""The errors the app raises: one tree that carries its own mapping. Each class says what HTTP status and
what CLI exit code it is, so the entry points translate by class and never by a list of their own."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The CLI's exit codes (`python -m transfer --help` lists them)."""

    OK = 0
    FAILED = 1  # a run failed or was canceled, a deployment failed, health is unhealthy
    BAD_INPUT = 2  # bad input, invalid settings, a role this instance lacks
    NOT_FOUND = 3
    CONFLICT = 4
    TRANSIENT = 5  # throttled, a dependency unavailable, items deferred, a wait timed out
    INTERNAL = 70  # a bug: the traceback is printed


class TransferError(Exception):
    """Base error: a stable machine-readable code, a message safe to show, and what it is about."""

    code = "InternalError"
    http_status = 500
    exit_code = ExitCode.FAILED
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
    http_status = 400
    exit_code = ExitCode.BAD_INPUT


class PayloadTooLarge(InvalidInput):
    """A request body over the HTTP API's limit."""

    code = "PayloadTooLarge"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """A request body that is not application/json (UTF-8)."""

    code = "UnsupportedMediaType"
    http_status = 415


class NotFound(TransferError):
    code = "NotFound"
    http_status = 404
    exit_code = ExitCode.NOT_FOUND


class Conflict(TransferError):
    code = "Conflict"
    http_status = 409
    exit_code = ExitCode.CONFLICT


class PreconditionFailed(Conflict):
    """An ETag-conditional write lost the race: someone else changed the record or blob first."""

    code = "PreconditionFailed"


class AlreadyExists(Conflict):
    code = "AlreadyExists"


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key sent again with another request: the request is unprocessable as sent."""

    code = "IdempotencyKeyReused"
    http_status = 422


class NotConfigured(TransferError):
    """This instance lacks the settings for the requested role (for example, no import pipeline)."""

    code = "NotConfigured"
    http_status = 422
    exit_code = ExitCode.BAD_INPUT


class AccessDenied(NotConfigured):
    """A service refused this instance's identity (401 / 403): a role it lacks, which the message names."""

    code = "AccessDenied"


class PipelineNotReady(NotConfigured):
    """The pipeline would fail a run as it is set up now (its SAS lacks a permission, say): fix it first."""

    code = "PipelineNotReady"


class Refused(TransferError):
    """A service answered a 4xx that a retry cannot change (too much metadata, an immutable or a leased
    blob, a request it rejects as sent): the caller takes another way or leaves the item for a person."""

    code = "Refused"


class InvalidSecret(NotConfigured):
    """A Key Vault secret that should hold a SAS does not (no `sig=`, an account-key connection string)."""

    code = "InvalidSecret"


class Throttled(TransferError):
    code = "Throttled"
    http_status = 429
    exit_code = ExitCode.TRANSIENT

    def __init__(self, message: str, *, retry_after: float | None = None, target: str | None = None) -> None:
        super().__init__(message, target=target)
        self.retry_after = retry_after


class Unavailable(TransferError):
    """A dependency (ARM, storage, Key Vault) failed transiently; the caller may retry later."""

    code = "Unavailable"
    http_status = 503
    exit_code = ExitCode.TRANSIENT


# Errors a caller may retry later unchanged: a pass defers the item, a request answers 429 / 503.
TRANSIENT_ERRORS = (Throttled, Unavailable)


class SettingsError(TransferError):
    """Every problem of the app's settings at once, each naming its setting."""

    code = "InvalidSettings"
    exit_code = ExitCode.BAD_INPUT

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings: " + "; ".join(problems))
        self.problems = problems
