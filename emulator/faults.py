"""Injected faults: the next N requests matching a method and a path pattern answer an error or are
delayed; the next run (optionally of one pipeline) fails with a given message."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.arm_errors import ApiError, bad_request
from emulator.store import State

_DEFAULTS: dict[int, tuple[str, str]] = {
    429: (  # ARM's own throttling (a token bucket per subscription and principal)
        "SubscriptionRequestsThrottled",
        "Number of '{kind}' requests for subscription '{subscription}' actor '{actor}' exceeded. Please try "
        "again after '{after}' seconds after additional tokens are available. Refer to "
        "https://aka.ms/arm-throttling for additional information.",
    ),
    500: (
        "InternalServerError",
        "Encountered internal server error. Diagnostic information: emulator fault.",
    ),
    503: ("ServiceUnavailable", "The service is unavailable. Please retry."),
    409: ("Conflict", "The request conflicts with the current state of the resource (emulator fault)."),
    404: ("NotFound", "The resource was not found (emulator fault)."),
    400: ("BadRequest", "The request is not valid (emulator fault)."),
}


@dataclass
class FaultRule:
    id: str
    method: str  # "*" for any
    path: re.Pattern[str]
    remaining: int
    status: int | None  # None: only the delay, then the request is served normally
    retry_after: str | None
    delay: float
    code: str | None
    message: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path.pattern,
            "remaining": self.remaining,
            "status": self.status,
            "retryAfter": self.retry_after,
            "delaySeconds": self.delay,
            "code": self.code,
            "message": self.message,
        }

    def error(self, method: str = "GET", path: str = "") -> ApiError:
        assert self.status is not None
        code, message = _DEFAULTS.get(self.status, ("EmulatorFault", "Injected fault."))
        retry_after = self.retry_after
        if self.status == 429 and retry_after is None:
            retry_after = "1"  # ARM always tells a throttled client when to come back
        if self.status == 429:
            segments = path.strip("/").split("/")
            message = message.format(
                kind={"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(method.upper(), "write"),
                subscription=segments[1] if len(segments) > 1 else "",
                actor="00000000-0000-0000-0000-000000000000",
                after=retry_after,
            )
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return ApiError(self.status, self.code or code, self.message or message, headers=headers)


@dataclass
class RunFailure:
    id: str
    pipeline: str | None  # a pipeline id or name, case-insensitive; None: any pipeline
    remaining: int
    message: str


class Faults:
    def __init__(self, state: State) -> None:
        self.state = state
        self.rules: list[FaultRule] = []
        self.run_failures: list[RunFailure] = []

    def clear(self) -> None:
        with self.state.lock:
            self.rules.clear()
            self.run_failures.clear()

    def add_rule(self, spec: dict[str, Any]) -> FaultRule:
        try:
            pattern = re.compile(spec.get("path") or ".*", re.IGNORECASE)
        except re.error as exc:
            raise bad_request(f"'path' is not a valid regular expression: {exc}") from None
        status = spec.get("status")
        delay = float(spec.get("delaySeconds") or 0)
        if status is None and delay <= 0:
            raise bad_request("A fault needs a 'status' (e.g. 429, 500, 409) or a 'delaySeconds'.")
        retry_after = spec.get("retryAfter")
        rule = FaultRule(
            id=str(uuid.uuid4()),
            method=str(spec.get("method") or "*").upper(),
            path=pattern,
            remaining=int(spec.get("count") or 1),
            status=int(status) if status is not None else None,
            retry_after=str(retry_after) if retry_after is not None else None,
            delay=delay,
            code=spec.get("code"),
            message=spec.get("message"),
        )
        with self.state.lock:
            self.rules.append(rule)
        return rule

    def match(self, method: str, path: str) -> FaultRule | None:
        """The first live rule matching the request (path searched, query excluded); uses up one count."""
        with self.state.lock:
            for rule in self.rules:
                if rule.remaining > 0 and rule.method in ("*", method) and rule.path.search(path):
                    rule.remaining -= 1
                    return rule
        return None

    def add_run_failure(self, spec: dict[str, Any]) -> RunFailure:
        failure = RunFailure(
            id=str(uuid.uuid4()),
            pipeline=spec.get("pipeline"),
            remaining=int(spec.get("count") or 1),
            message=str(spec.get("message") or "Injected failure: the pipeline run failed (emulator fault)."),
        )
        with self.state.lock:
            self.run_failures.append(failure)
        return failure

    def take_run_failure(self, pipeline_id: str) -> str | None:
        with self.state.lock:
            for failure in self.run_failures:
                wanted = (failure.pipeline or "").lower()
                matches = (
                    not wanted or wanted == pipeline_id.lower() or pipeline_id.lower().endswith("/" + wanted)
                )
                if failure.remaining > 0 and matches:
                    failure.remaining -= 1
                    return failure.message
        return None

    def describe(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "requests": [r.describe() for r in self.rules if r.remaining > 0],
                "runs": [
                    {"id": f.id, "pipeline": f.pipeline, "remaining": f.remaining, "message": f.message}
                    for f in self.run_failures
                    if f.remaining > 0
                ],
            }
