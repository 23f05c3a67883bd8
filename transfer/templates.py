"""The ARM templates in templates/, loaded once per process; they ship with the app."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

# Installed as a package, the templates travel inside it (pyproject.toml); in the repository and the Functions
# deployment package they are the top-level templates/ folder.
_PACKAGED = Path(__file__).resolve().parent / "arm_templates"
TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "templates"

EXPORT_PIPELINE = "export-pipeline"
IMPORT_PIPELINE = "import-pipeline"
EXPORT_RUN = "pipelinerun-export"
IMPORT_RUN = "pipelinerun-import"


@cache
def load(name: str) -> dict[str, Any]:
    with (TEMPLATES / name / "azuredeploy.json").open(encoding="utf-8") as handle:
        template: dict[str, Any] = json.load(handle)
    return template
