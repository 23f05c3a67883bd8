"""Azure Functions entry points. Handlers translate requests to service calls; see transfer/ for the logic."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
