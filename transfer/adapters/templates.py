"""The ARM templates in templates/, loaded once per process; they ship with the app."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from transfer.domain.arm_views import EXPORT_PIPELINE, EXPORT_RUN, IMPORT_PIPELINE, IMPORT_RUN

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

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
