"""Retries that fit a function invocation: the retry policy of every Azure SDK client the app builds.

azure-core's RetryPolicy obeys `Retry-After` without a cap (a 600 s header sleeps 600 s, three times).
`CappedRetryPolicy` caps every sleep and the whole retry time of one request, and does not wait at all for
a server that asks for longer than `max_sleep`: the 429 goes back to the caller at once, which maps it to
Throttled (with its Retry-After) and leaves the work for a later tick instead of sleeping inside an
invocation. So an HTTP handler answers within seconds whatever ARM does.

azure-core is imported lazily: importing this module costs nothing at cold start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.pipeline.policies import RetryPolicy

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_SLEEP = 5.0  # seconds: the longest Retry-After waited for; a longer one is not retried at all
BUDGET = 12.0  # seconds: all retries of one request, sleeps included
ATTEMPTS = 3  # retries after the first try
BACKOFF = 0.8  # seconds, doubled per consecutive error (azure-core's exponential backoff)


# Every SDK client the app builds (ARM, Tables, Blob, Key Vault, the registry, the credential) waits at most
# CONNECT_TIMEOUT to connect and READ_TIMEOUT for each read of an answer (azure-core's default: 300 s each,
# so a hung Table Storage held a timer tick for minutes), and retries a read that timed out once.
CONNECT_TIMEOUT = 5  # seconds
READ_TIMEOUT = 15  # seconds; the app's answers are small (a page of a list at most) or asynchronous
READ_RETRIES = 1


def client_timeouts() -> dict[str, int]:
    """The keyword arguments that bound every SDK client in time (docs/reliability.md)."""
    return {"connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}


def client_retries() -> dict[str, int]:
    """azure-core's retry counts for the clients that use its default policy (Tables, Key Vault, the
    registry): 3 retries, of which one after a read that timed out."""
    return {"retry_total": ATTEMPTS, "retry_read": READ_RETRIES}


STORAGE_INITIAL_BACKOFF = 0  # seconds: Azure Storage's n-th retry waits initial + base**n (n = 1, 2, 3)
STORAGE_BACKOFF_BASE = 1.5  # ... so 1.5, 2.25 and 3.4 s (each +- 0.5 s): about 7 s for its 3 retries


def storage_retry_policy() -> Any:
    """A fresh retry policy for a Blob Storage client: Storage's own ExponentialRetry (it knows Storage's
    codes and secondary endpoints) with waits that fit an invocation. The SDK's default waits 18, 24 and
    42 s (+- 3 s): a blob event, a health probe or GET /api/blobs/{name} would sleep 84 s on a storage
    account that does not answer."""
    from azure.storage.blob import ExponentialRetry

    return ExponentialRetry(
        initial_backoff=STORAGE_INITIAL_BACKOFF,
        increment_base=STORAGE_BACKOFF_BASE,  # typed int in the SDK, used as a float
        retry_total=ATTEMPTS,
        retry_read=READ_RETRIES,
        random_jitter_range=0.5,
    )


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
    from transfer.adapters.capped_retry import CappedRetryPolicy, Rules  # azure-core loads here, on first use

    rules = Rules(RETRY_STATUSES, retry_delay, fits_budget)
    policy: RetryPolicy = CappedRetryPolicy(
        max_sleep=max_sleep,
        budget=budget,
        attempts=attempts,
        backoff=backoff,
        sleep=sleep,
        clock=clock,
        rules=rules,
    )
    return policy
