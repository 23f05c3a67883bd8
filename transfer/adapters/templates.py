"""The ARM templates in templates/, loaded once per process; they ship with the app."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from transfer.domain.arm_views import EXPORT_PIPELINE, EXPORT_RUN, IMPORT_PIPELINE, IMPORT_RUN

# Installed as a package, the templates travel inside it (pyproject.toml); in the repository and the Functions
# deployment package they are the top-level templates/ folder.
_PACKAGED = Path(__file__).resolve().parents[1] / "arm_templates"
TEMPLATES = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "templates"

__all__ = ["EXPORT_PIPELINE", "EXPORT_RUN", "IMPORT_PIPELINE", "IMPORT_RUN", "FileTemplates", "load"]


@cache
def load(name: str) -> dict[str, Any]:
    with (TEMPLATES / name / "azuredeploy.json").open(encoding="utf-8") as handle:
        template: dict[str, Any] = json.load(handle)
    return template


class FileTemplates:
    """TemplateSource over templates/ beside the app."""

    def load(self, name: str) -> dict[str, Any]:
        return load(name)
