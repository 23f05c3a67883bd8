"""Retries that fit a function invocation, and the mapping of Azure SDK errors to the service's errors.

azure-core's RetryPolicy obeys `Retry-After` without a cap (a 600 s header sleeps 600 s, three times).
`CappedRetryPolicy` caps every sleep and the whole retry time of one request; once the budget is spent
the last response (a 429, a 503) goes back to the caller, which maps it to Throttled / Unavailable and
tries again on its next timer tick.

azure-core is imported lazily: importing this module costs nothing at cold start.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from transfer.errors import Throttled, TransferError, Unavailable

if TYPE_CHECKING:
    from azure.core.pipeline.policies import RetryPolicy

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_SLEEP = 20.0  # seconds: longest single wait, whatever Retry-After says
BUDGET = 60.0  # seconds: all retries of one request, sleeps included
ATTEMPTS = 3  # retries after the first try
BACKOFF = 0.8  # seconds, doubled per consecutive error (azure-core's exponential backoff)


def retry_delay(retry_after: float | None, backoff: float, *, max_sleep: float = MAX_SLEEP) -> float:
    """The wait before the next try: the server's Retry-After if it sent one, else the backoff; capped."""
    delay = backoff if retry_after is None else retry_after
    return max(0.0, min(delay, max_sleep))


def fits_budget(elapsed: float, delay: float, budget: float = BUDGET) -> bool:
    """Whether waiting `delay` more seconds still ends within the retry budget of the request."""
    return elapsed + delay <= budget


def capped_retry_policy(
    *,
    max_sleep: float = MAX_SLEEP,
    budget: float = BUDGET,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RetryPolicy:
    """A fresh CappedRetryPolicy (a pipeline links its policies: never share one between two clients).

    `sleep` replaces the transport's sleep (tests); `clock` measures the budget."""
    policy: RetryPolicy = _policy_class()(
        max_sleep=max_sleep, budget=budget, attempts=attempts, backoff=backoff, sleep=sleep, clock=clock
    )
    return policy


@cache
def _policy_class() -> type[RetryPolicy]:
    from azure.core.pipeline import PipelineResponse
    from azure.core.pipeline.policies import RetryPolicy

    class CappedRetryPolicy(RetryPolicy):  # type: ignore[misc]
        """Retries 429/500/502/503/504 and connection errors; each sleep <= max_sleep; all <= budget."""

        def __init__(
            self,
            *,
            max_sleep: float,
            budget: float,
            attempts: int,
            backoff: float,
            sleep: Callable[[float], None] | None,
            clock: Callable[[], float],
        ) -> None:
            super().__init__(
                retry_total=attempts,
                retry_connect=attempts,
                retry_read=attempts,
                retry_status=attempts,
                retry_backoff_factor=backoff,
                retry_backoff_max=max_sleep,
                timeout=int(budget) + 1,
            )
            self.max_sleep = max_sleep
            self.budget = budget
            self._sleep = sleep
            self._clock = clock

        def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
            settings: dict[str, Any] = super().configure_retries(options)
            settings["capped_started"] = self._clock()
            return settings

        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            if response.http_response.status_code not in RETRY_STATUSES:
                return False
            return bool(super().is_retry(settings, response))

        def next_delay(self, settings: dict[str, Any], response: Any = None) -> float:
            retry_after = None
            if isinstance(response, PipelineResponse):
                retry_after = self.get_retry_after(response)
            return retry_delay(retry_after, self.get_backoff_time(settings), max_sleep=self.max_sleep)

        def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
            if not super().increment(settings, response=response, error=error):
                return False
            elapsed = self._clock() - settings["capped_started"]
            return fits_budget(elapsed, self.next_delay(settings, response), self.budget)

        def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
            delay = self.next_delay(settings, response)
            if delay <= 0:
                return
            if self._sleep is not None:
                self._sleep(delay)
            else:
                transport.sleep(delay)

    return CappedRetryPolicy


# ---- errors -----------------------------------------------------------------------------------------

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


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def error_code_of(exc: BaseException) -> str:
    """The service's error code (ARM `error.code`, Storage `x-ms-error-code`), or ''."""
    code = getattr(exc, "error_code", None)
    if code:
        return str(code)
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


def translate(exc: Exception, what: str, *, detail: str = "") -> TransferError:
    """A TransferError for an Azure SDK error: Throttled, Unavailable, or a plain TransferError whose
    message names `what` failed and never carries a secret. `detail` is appended after redaction."""
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
        why = "not authenticated" if status in (None, 401) else "not authorized"
        return TransferError(
            f"{what}: {why} ({status or 'credential'}){suffix}: check the managed identity and its role "
            f"assignments{extra}",
            code="AccessDenied",
        )
    if isinstance(exc, HttpResponseError):
        return TransferError(f"{what}: failed ({status}){suffix}{extra}")
    return TransferError(f"{what}: {type(exc).__name__}{extra}")
