"""The functions DESIGN.md names, as the host must see them: checked by tests/functions (azure-functions'
own metadata) and tests/host (the host's Python worker)."""

TIMERS = {
    "scheduled_export": "%TRANSFER_EXPORT_SCHEDULE%",
    "reconcile": "%TRANSFER_RECONCILE_SCHEDULE%",
    "sweep_stale_blobs": "%TRANSFER_SWEEP_SCHEDULE%",
}
HTTP = {
    "start_export": ("POST", "exports"),
    "start_import": ("POST", "imports"),
    "get_run": ("GET", "runs/{run_id}"),
    "list_runs": ("GET", "runs"),
    "delete_run": ("DELETE", "runs/{run_id}"),
    "health": ("GET", "health"),
    "get_blob": ("GET", "blobs/{*name}"),
}
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
