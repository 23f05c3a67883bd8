"""The app's log records in Application Insights with their `transfer.*` custom dimensions.

The Functions Python worker forwards every log record to the host as its formatted message, level and
category only; the host's Application Insights logger writes that message, so the `extra=` fields the app
logs (run id, blob, trigger, outcome, error cause, event) never become custom dimensions that way. The
alert queries of infra/README.md read `customDimensions["transfer.event"]` and its siblings, so the app
exports its own `transfer` logger (and its children) with the Azure Monitor OpenTelemetry distro: the
distro's logging handler turns every attribute of a record into an attribute of the log, which the
exporter writes as a custom dimension under the same name. `DimensionFilter`, on that handler only, adds
the dimension names the queries use (`run_id` -> `transfer.run_id`, ...) and removes secrets from the
message. docs/operations.md says why this way and not another.

`setup()` runs once, from function_app.py. Without APPLICATIONINSIGHTS_CONNECTION_STRING (tests, the CLI,
`make demo`) it does nothing and imports nothing: the distro (OpenTelemetry SDK and exporter) is imported
only when there is somewhere to send to.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from transfer.adapters.sdk_errors import redact

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
LOGGER = "transfer"  # the app's loggers: transfer, transfer.adapters.arm, transfer.functions, ...
# The `extra=` keys the app logs, and the custom dimensions the alert queries read (infra/README.md).
DIMENSIONS: Mapping[str, str] = {
    "event": "transfer.event",
    "run_id": "transfer.run_id",
    "blob": "transfer.blob",
    "trigger": "transfer.trigger",
    "outcome": "transfer.outcome",
    "error_cause": "transfer.error_cause",
}
MAX_VALUE = 1024  # a blob name is at most 1024 characters; nothing longer belongs in a dimension
MAX_MESSAGE = 8 * 1024  # what Application Insights keeps of a property; the message is cut there too

# The distro's instrumentations patch HTTP libraries and the Azure SDK to trace requests; the app sends
# only logs (the host already records each invocation as a request), so each one is switched off.
INSTRUMENTATIONS = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "httpx2",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)


class DimensionFilter(logging.Filter):
    """Adds `transfer.<name>` beside each extra the alert queries read, as text (an absent or empty value
    adds nothing), and rewrites the message without SAS signatures, query strings, keys or tokens. Changes
    the record in place (Python 3.11 has no filters that return a record) and never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, name in DIMENSIONS.items():
            value = record.__dict__.get(key)
            if value is None or value == "":
                continue
            value = getattr(value, "value", value)  # an enum member: its value
            record.__dict__[name] = redact(str(value), MAX_VALUE)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call; logging reports it itself
            return True
        cleaned = redact(message, MAX_MESSAGE)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def dimensions(record: logging.LogRecord) -> dict[str, str]:
    """The `transfer.*` dimensions a record carries (after DimensionFilter)."""
    return {name: record.__dict__[name] for name in DIMENSIONS.values() if name in record.__dict__}


def setup(
    environ: Mapping[str, str] | None = None, configure: Callable[..., Any] | None = None
) -> logging.Handler | None:
    """Export the `transfer` loggers to Application Insights when the connection string is set; idempotent.
    Returns the exporting handler (with DimensionFilter on it), or None when nothing is exported.

    `configure` stands in for `azure.monitor.opentelemetry.configure_azure_monitor` (tests)."""
    environ = os.environ if environ is None else environ
    connection = environ.get(CONNECTION_STRING, "").strip()
    if not connection:
        return None
    logger = logging.getLogger(LOGGER)
    existing = _exporting_handler(logger)
    if existing is not None:
        return existing
    before = set(logger.handlers)
    try:
        if configure is None:
            from azure.monitor.opentelemetry import configure_azure_monitor

            configure = configure_azure_monitor
        configure(
            connection_string=connection,
            logger_name=LOGGER,  # only the app's records: not the worker's, the SDKs' or the exporter's own
            disable_tracing=True,
            disable_metrics=True,
            enable_live_metrics=False,
            enable_performance_counters=False,
            instrumentation_options={name: {"enabled": False} for name in INSTRUMENTATIONS},
        )
    except Exception as exc:  # telemetry must never stop the app from starting; the host still logs
        logger.warning("Application Insights export of the app's logs is off: %s", redact(str(exc), 500))
        return None
    added = [handler for handler in logger.handlers if handler not in before]
    if not added:
        return None
    handler = added[0]
    handler.addFilter(DimensionFilter())
    return handler


def _exporting_handler(logger: logging.Logger) -> logging.Handler | None:
    for handler in logger.handlers:
        if any(isinstance(f, DimensionFilter) for f in handler.filters):
            return handler
    return None
