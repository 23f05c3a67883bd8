"""The retry policy of every SDK client, as an azure-core RetryPolicy. retry.py decides its numbers and
rules and hands them over (`Rules`); importing this module loads azure-core, so retry.py imports it on
first use only."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy


@dataclass(frozen=True)
class Rules:
    statuses: Collection[int]  # the statuses retried
    delay: Callable[..., float]  # (retry_after, backoff, max_sleep=) -> the wait before the next try
    fits: Callable[[float, float, float], bool]  # (elapsed, delay, budget) -> whether to wait at all


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
        rules: Rules,
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
        self._rules = rules

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = super().configure_retries(options)
        settings["capped_started"] = self._clock()
        return settings

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        if response.http_response.status_code not in self._rules.statuses:
            return False
        return bool(super().is_retry(settings, response))

    def next_delay(self, settings: dict[str, Any], response: Any = None) -> float:
        retry_after = None
        if isinstance(response, PipelineResponse):
            retry_after = self.get_retry_after(response)
        return self._rules.delay(retry_after, self.get_backoff_time(settings), max_sleep=self.max_sleep)

    def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
        if isinstance(response, PipelineResponse):
            asked = self.get_retry_after(response)
            if asked is not None and asked > self.max_sleep:
                return False  # the server wants minutes: the caller defers instead of sleeping
        if not super().increment(settings, response=response, error=error):
            return False
        elapsed = self._clock() - settings["capped_started"]
        return self._rules.fits(elapsed, self.next_delay(settings, response), self.budget)

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        delay = self.next_delay(settings, response)
        if delay <= 0:
            return
        if self._sleep is not None:
            self._sleep(delay)
        else:
            transport.sleep(delay)
