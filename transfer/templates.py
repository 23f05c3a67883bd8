"""The ARM templates in templates/, loaded once per process; they ship with the app."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

EXPORT_PIPELINE = "export-pipeline"
IMPORT_PIPELINE = "import-pipeline"
EXPORT_RUN = "pipelinerun-export"
IMPORT_RUN = "pipelinerun-import"


@cache
def load(name: str) -> dict[str, Any]:
    with (TEMPLATES / name / "azuredeploy.json").open(encoding="utf-8") as handle:
        template: dict[str, Any] = json.load(handle)
    return template
