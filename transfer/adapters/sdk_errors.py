"""Azure SDK exceptions as the project's errors (transfer/domain/errors.py): one table, and one way to use it.

Every adapter call into an Azure SDK runs inside `translated`, which raises what the table says:

    with translated(f"blob storage: reading properties of {name}", absent=IGNORE) as call:
        props = client.get_blob_properties()
    if call.ignored:  # the blob does not exist
        return None

What the caller declares about one call comes first; each declaration is either the caller's own error
to raise instead (NotFound, AlreadyExists, PreconditionFailed) or IGNORE (the block ends quietly and
`call.ignored` is true):

| declaration | SDK exception |
| --- | --- |
| `ignore_if` | any exception the caller's predicate accepts |
| `absent` | ResourceNotFoundError (404) |
| `exists` | ResourceExistsError (409) |
| `changed` | ResourceModifiedError, or a 412 ConditionNotMet: an ETag-conditional write lost the race |

Then the table (`translate`), in order; an undeclared 404, 409 or 412 is a plain TransferError, because
the service gives NotFound, AlreadyExists and PreconditionFailed a meaning of their own:

| SDK exception | project error |
| --- | --- |
| ServiceRequestError, ServiceResponseError without an HTTP status | Unavailable (not reached) |
| ClientAuthenticationError without an HTTP status: no token (CredentialUnavailableError, | Unavailable, |
|   an identity endpoint that timed out) | so a run is retried, not failed |
| 429 | Throttled, with Retry-After |
| 5xx | Unavailable |
| 401, 403, any other ClientAuthenticationError | AccessDenied (a NotConfigured: HTTP 422) |
| 408 | Unavailable (the service timed out waiting for the request) |
| any other 4xx but 404 (400 MetadataTooLarge, 409 BlobImmutableDueToPolicy, 412 LeaseIdMissing) | Refused: |
|   a retry cannot change it (an undeclared 404 may heal: ARM's reads lag) |
| any other HttpResponseError | TransferError naming the status and error code |
| anything else | TransferError naming the exception's type |

A TransferError raised inside the block (an adapter's own, or one already translated) passes unchanged;
so do BaseExceptions that are not Exceptions. Translated errors are raised `from None`: no SDK
exception (whose text may hold a URL with its SAS) travels along. Messages never carry a secret:
`redact` removes SAS signatures, query strings, account keys and bearer tokens, and
`install_log_redaction` does the same for the loggers that print request URLs.

azure.core is imported lazily, only while an exception is being translated: importing this module costs
nothing at cold start.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from enum import Enum
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, overload

from transfer.domain.errors import AccessDenied, Refused, Throttled, TransferError, Unavailable

# ---- redaction ----------------------------------------------------------------------------------------

_SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(sig|signature)=[^&\s'\"<>]+"), r"\1=REDACTED"),
    (re.compile(r"(?i)(https?://[^\s?'\"<>]+)\?[^\s'\"<>]*"), r"\1?REDACTED"),
    (re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;\s'\"<>]+"), r"\1=REDACTED"),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer REDACTED"),
)
MAX_MESSAGE = 2000


def redact(text: str, limit: int = MAX_MESSAGE) -> str:
    """The text without SAS signatures, URL query strings, account keys or bearer tokens; shortened."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_json(value: Any) -> Any:
    """A JSON value with every string in it redacted, never shortened: ARM's resource bodies carry the
    service's own words (a pipelineRun's `pipelineRunErrorMessage`), which may quote a URL with its SAS."""
    if isinstance(value, str):
        return redact(value, limit=sys.maxsize)
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_json(item) for key, item in value.items()}
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message without secrets (see `redact`); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message, limit=100_000)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Loggers that write request URLs verbatim (urllib3 logs "PUT /container/blob?...&sig=... HTTP/1.1" at
# DEBUG); azure-core's own HTTP logging policy already redacts query parameters and headers.
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests.packages.urllib3.connectionpool")


def install_log_redaction() -> None:
    """Attach a RedactingFilter to the loggers that print request URLs (idempotent). Adapters that put
    a SAS into URLs call it, so that a DEBUG log level never writes a signature."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


# ---- what an SDK exception says -----------------------------------------------------------------------


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error, or None (not reached, no token, not an HTTP error)."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def error_code_of(exc: BaseException) -> str:
    """The service's error code (ARM `error.code`, Storage `x-ms-error-code`), or ''."""
    code = getattr(exc, "error_code", None)
    if code:  # Storage's SDKs give an enum (StorageErrorCode.LEASE_ID_MISSING): its value is the wire code
        return str(getattr(code, "value", code))
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    return str(code) if code else ""


def retry_after_of(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        return None


# ---- the table ----------------------------------------------------------------------------------------


def translate(exc: Exception, what: str, *, detail: str = "", sas: bool = False) -> TransferError:
    """The project's error for an SDK error (the table above): its message names `what` failed and
    never carries a secret. `detail` (the service's own words) is appended after redaction. The
    service's error codes and correlation id travel on the error."""
    error = _translate(exc, what, detail=detail, sas=sas)
    error.service_codes = tuple(dict.fromkeys(c for c in (error_code_of(exc), *_nested_codes(exc)) if c))
    error.correlation_id = _header(exc, "x-ms-correlation-request-id")
    return error


def _header(exc: BaseException, name: str) -> str | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get(name) if headers is not None else None
    return str(value) if value else None


def _nested_codes(exc: BaseException) -> list[str]:
    """The codes of ARM's nested `error.details` (the SDK's error object keeps them as objects)."""
    found: list[str] = []

    def walk(item: Any) -> None:
        for detail in getattr(item, "details", None) or ():
            code = getattr(detail, "code", None)
            if code:
                found.append(str(code))
            walk(detail)

    walk(getattr(exc, "error", None))
    return found


def _translate(exc: Exception, what: str, *, detail: str = "", sas: bool = False) -> TransferError:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = status_of(exc)
    code = error_code_of(exc)
    suffix = f" ({code})" if code else ""
    extra = f": {redact(detail)}" if detail else ""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)) and status is None:
        return Unavailable(f"{what}: the service could not be reached ({type(exc).__name__}){extra}")
    if isinstance(exc, ClientAuthenticationError) and status is None:
        # No token (the identity endpoint timed out, say): transient, so a run is retried, not failed.
        return Unavailable(f"{what}: could not get a token for the managed identity{extra}")
    if status == 429:
        return Throttled(f"{what}: throttled (429){suffix}{extra}", retry_after=retry_after_of(exc))
    if status is not None and status >= 500:
        return Unavailable(f"{what}: the service failed ({status}){suffix}{extra}")
    if status in (401, 403) or isinstance(exc, ClientAuthenticationError):
        return _denied(status, what, suffix, extra, sas)
    if isinstance(exc, HttpResponseError):
        return _other_status(status, f"{what}: ", f"{suffix}{extra}")
    return TransferError(f"{what}: {type(exc).__name__}{extra}")


def _denied(status: int | None, what: str, suffix: str, extra: str, sas: bool) -> AccessDenied:
    why = "not authenticated" if status in (None, 401) else "not authorized"
    # The call's own credential names what to check: a SAS refused is not an identity problem.
    check = _CHECK_SAS if sas else "check the managed identity and its role assignments"
    return AccessDenied(f"{what}: {why} ({status or 'credential'}){suffix}: {check}{extra}")


_CHECK_SAS = "check the SAS (its expiry, permissions sp=, srt=sco for an account SAS, spr=https)"


def _other_status(status: int | None, what: str, rest: str) -> TransferError:
    if status == 408:
        return Unavailable(f"{what}the service timed out (408){rest}")
    if status is not None and 400 <= status < 500 and status != 404:  # a 404 may heal (ARM's reads lag)
        return Refused(f"{what}failed ({status}){rest}")
    return TransferError(f"{what}failed ({status}){rest}")


# ---- the context manager ------------------------------------------------------------------------------


class Ignore(Enum):
    """The declaration "this outcome is expected: end the block quietly"."""

    IGNORE = "ignore"

    def __repr__(self) -> str:
        return "IGNORE"


IGNORE: Final = Ignore.IGNORE

Reaction: TypeAlias = "TransferError | Literal[Ignore.IGNORE] | None"
"""What to do with one kind of SDK error: raise this error instead, IGNORE it, or (None) the table."""


Swallows = TypeVar("Swallows", bound=bool, covariant=True)


class Translated(Generic[Swallows]):
    """The context manager of `translated`; `ignored` tells whether the block ended on an IGNOREd error.

    `Swallows` is Literal[False] when nothing was declared IGNORE: then the type checker knows that the
    block never ends quietly on an error (a `return` inside it is the function's last word)."""

    __slots__ = ("_absent", "_changed", "_detail", "_exists", "_ignore_if", "_sas", "ignored", "what")

    def __init__(
        self,
        what: str,
        *,
        detail: Callable[[Exception], str] | None,
        absent: Reaction,
        exists: Reaction,
        changed: Reaction,
        ignore_if: Callable[[Exception], bool] | None,
        sas: bool = False,
    ) -> None:
        self.what = what
        self._sas = sas
        self.ignored = False
        self._detail = detail
        self._absent = absent
        self._exists = exists
        self._changed = changed
        self._ignore_if = ignore_if

    def __enter__(self) -> Translated[Swallows]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> Swallows:
        if exc is None or isinstance(exc, TransferError) or not isinstance(exc, Exception):
            return False  # type: ignore[return-value]  # False is every Swallows
        reaction = self._declared(exc)
        if reaction is IGNORE:
            self.ignored = True
            return True  # type: ignore[return-value]  # only a Translated[bool] declares IGNORE
        if reaction is None:
            detail = self._detail(exc) if self._detail else ""
            reaction = translate(exc, self.what, detail=detail, sas=self._sas)
        raise reaction from None

    def _declared(self, exc: Exception) -> Reaction:
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        if self._ignore_if is not None and self._ignore_if(exc):
            return IGNORE
        if self._absent is not None and isinstance(exc, ResourceNotFoundError):
            return self._absent
        if self._exists is not None and isinstance(exc, ResourceExistsError):
            return self._exists
        if self._changed is not None and (isinstance(exc, ResourceModifiedError) or _lost_race(exc)):
            return self._changed
        return None


# A 412 that means "the ETag did not match"; others (LeaseIdMissing, LeaseIdMismatch...) are Refused.
_RACE_CODES = frozenset({"", "ConditionNotMet", "PreconditionFailed", "UpdateConditionNotSatisfied"})


def _lost_race(exc: Exception) -> bool:
    return status_of(exc) == 412 and error_code_of(exc) in _RACE_CODES


@overload
def translated(
    what: str,
    *,
    detail: Callable[[Exception], str] | None = None,
    absent: TransferError | None = None,
    exists: TransferError | None = None,
    changed: TransferError | None = None,
    sas: bool = False,
) -> Translated[Literal[False]]: ...


@overload
def translated(
    what: str,
    *,
    detail: Callable[[Exception], str] | None = None,
    absent: Reaction = None,
    exists: Reaction = None,
    changed: Reaction = None,
    ignore_if: Callable[[Exception], bool] | None = None,
    sas: bool = False,
) -> Translated[bool]: ...


def translated(
    what: str,
    *,
    detail: Callable[[Exception], str] | None = None,
    absent: Reaction = None,
    exists: Reaction = None,
    changed: Reaction = None,
    ignore_if: Callable[[Exception], bool] | None = None,
    sas: bool = False,
) -> Translated[bool]:
    """A context manager that raises the project's error for an SDK error inside it (see the module).

    `what` names the work ("ARM: reading deployment x"); `detail(exc)` adds the service's own words;
    `absent`, `exists`, `changed` and `ignore_if` are the caller's declarations; `sas`: the call is
    authorised by a SAS, so a 401 / 403 says to check it (not the managed identity)."""
    return Translated[bool](
        what, detail=detail, absent=absent, exists=exists, changed=changed, ignore_if=ignore_if, sas=sas
    )
