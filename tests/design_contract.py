"""The contracts as the tests check them: the app settings (tests/test_infra.py, test_templates.py)
and the functions as the host must see them (tests/functions: azure-functions' own metadata; tests/host:
the host's Python worker)."""

from transfer.entrypoints.http_api import ROUTES

# The app settings table (the contract); connections are checked by their identity settings.
DESIGN_SETTINGS = {
    "AZURE_SUBSCRIPTION_ID",
    "TRANSFER_RESOURCE_GROUP",
    "TRANSFER_REGISTRY",
    "TRANSFER_EXPORT_PIPELINE",
    "TRANSFER_IMPORT_PIPELINE",
    "TRANSFER_EXPORT_ARTIFACTS",
    "TRANSFER_EXPORT_INCREMENTAL",
    "TRANSFER_EXPORT_MAX_ARTIFACTS",
    "TRANSFER_REGISTRY_ENDPOINT",
    "TRANSFER_EXPORT_SCHEDULE",
    "TRANSFER_RECONCILE_SCHEDULE",
    "TRANSFER_SWEEP_SCHEDULE",
    "TRANSFER_TARGET_CONTAINER",
    "TRANSFER_STALE_BLOB_ACTION",
    "TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS",
    "TRANSFER_STALE_MARGIN_HOURS",
    "TRANSFER_RUN_RETENTION_HOURS",
    "TRANSFER_RUN_TIMEOUT_HOURS",
    "TRANSFER_IMPORT_MAX_ATTEMPTS",
    "TRANSFER_COPY_TARGET_URL",
    "TRANSFER_COPY_TARGET_SAS_SECRET_URI",
    "TRANSFER_CLOUD",
    "TRANSFER_ARM_ENDPOINT",
    "TRANSFER_PIPELINE_API_VERSION",
    "AZURE_CLIENT_ID",
    "TRANSFER_EXPORT_ON_PUSH",
    "TRANSFER_PUSH_WINDOW_SECONDS",
    "TRANSFER_IMPORT_ON_ARRIVAL",
    "TRANSFER_FOLLOW_SCHEDULE",
}

TIMERS = {
    "scheduled_export": "%TRANSFER_EXPORT_SCHEDULE%",
    "reconcile": "%TRANSFER_RECONCILE_SCHEDULE%",
    "sweep_stale_blobs": "%TRANSFER_SWEEP_SCHEDULE%",
    "follow_runs": "%TRANSFER_FOLLOW_SCHEDULE%",
}
UNMONITORED = {"follow_runs"}  # a sub-minute timer: no schedule monitor (the host's own default)
EVENT_GRID = {"on_image_pushed"}  # Event Grid triggered (the source registry's ImagePushed)
# The HTTP functions: the route table's rows (tests/functions/test_http.py holds them to the README's API).
HTTP = {route.function: (route.method, route.template) for route in ROUTES}
BLOB_TRIGGER = {  # the binding of on_target_blob
    "direction": "IN",
    "type": "blobTrigger",
    "name": "client",
    "path": "%TRANSFER_TARGET_CONTAINER%/{name}",
    "connection": "TransferStorage",
    "source": "EventGrid",
}


def http_bindings(method: str, route: str) -> list[dict[str, object]]:
    """The trigger and output bindings of an HTTP function with the function auth level."""
    return [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "methods": [method],
            "authLevel": "FUNCTION",
            "route": route,
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]
