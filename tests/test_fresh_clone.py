"""A fresh clone stands alone: nothing reads outside the repository, and make says early what it lacks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GIT = shutil.which("git")
MAKE = shutil.which("make")
OUTSIDE = re.compile(r"\.\./shared|parents\[\d\]\s*/\s*[\"']shared|EMULATOR_REFERENCE_DIR")


def tracked_files() -> list[Path]:
    listed = subprocess.run([str(GIT), "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


@pytest.mark.skipif(GIT is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_code_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix not in (".py", ".sh", ".json", ".toml", ".cfg") and path.name not in (
            "Makefile",
            "run",
        ):
            continue
        if path.name == "package-lock.json" or path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# Documents that are not in the repository: what the code relies on is in docs/service-facts.md instead.
ELSEWHERE = re.compile(r"\b(DESIGN|FACTS)\.md\b|\bDESIGN's\b|`shared/|/work/")
CHECKED = ("transfer/", "tests/", "docs/", "infra/", "bench/", "demo/", "templates/", "function_app.py")
CHECKED += ("README.md",)


@pytest.mark.skipif(GIT is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_file_names_a_document_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        name = path.relative_to(ROOT).as_posix()
        if not name.startswith(CHECKED) or path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if ELSEWHERE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_test_stops_at_its_start_when_python_3_13_is_missing() -> None:
    done = subprocess.run(
        [str(MAKE), "--no-print-directory", "test", "PYTHON313="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "Python 3.13 not found" in done.stderr
    assert "pyenv install 3.13" in done.stderr
    assert "ruff" not in done.stdout  # nothing else ran before the check
    assert "pytest" not in done.stdout
