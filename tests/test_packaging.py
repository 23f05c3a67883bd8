"""The project installs as a package: `pip install .` gives a `transfer` command that works from any folder as
`python -m transfer` does in the repository, with the ARM templates inside the wheel and the dependencies the
Functions deployment installs (requirements.txt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(p.relative_to(ROOT / "templates") for p in (ROOT / "templates").rglob("*") if p.is_file())


def requirement_set(lines: list[str]) -> set[tuple[str, str, str]]:
    found = set()
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            found.add(
                (canonicalize_name(requirement.name), str(requirement.specifier), str(requirement.marker))
            )
    return found


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_package_depends_on_exactly_what_the_functions_deployment_installs() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    required = requirement_set((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert requirement_set(project["dependencies"]) == required
    assert project["scripts"] == {"transfer": "transfer.__main__:main"}


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without what would let the repository leak in (PYTHONPATH, a venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **extra}


def run(*command: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel . --no-deps`, as a user builds it (isolated build: the backend comes from the index)."""
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--quiet", "--wheel-dir", out, cwd=ROOT)
    (built,) = out.glob("acr_transfer-*.whl")
    return built


def test_the_wheel_holds_the_library_its_types_and_the_templates(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "transfer/py.typed" in names
        assert {"transfer/__main__.py", "transfer/service/__init__.py"} <= names
        for relative in TEMPLATES:
            inside = f"transfer/arm_templates/{relative.as_posix()}"
            assert archive.read(inside) == (ROOT / "templates" / relative).read_bytes(), inside
        # the app, the emulator, tests and tools stay out
        assert not {n for n in names if n.split("/")[0] in ("emulator", "tests", "demo", "bench", "infra")}
        assert "function_app.py" not in names
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1] for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]  # fmt: skip
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "transfer = transfer.__main__:main" in archive.read(entry_points).decode()
    required = requirement_set((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert requirement_set(requires) == required


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv where `pip install --no-deps .` ran; it sees .venv's packages (a .pth file) for the
    dependencies, so nothing but the build backend comes from the index. Returns the venv's bin folder."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    run(sys.executable, "-m", "venv", venv, cwd=ROOT)
    python = venv / "bin" / "python"
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=ROOT
        ).stdout.strip()
    )
    (site / "dependencies-of-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", ".", cwd=ROOT)
    return venv / "bin"


def test_pip_install_gives_a_transfer_command_that_works_from_any_folder(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    command = run(installed / "transfer", "--help", cwd=elsewhere, PATH=f"{installed}:/usr/bin:/bin")
    module = run(installed / "python", "-m", "transfer", "--help", cwd=elsewhere)
    in_repo = run(sys.executable, "-m", "transfer", "--help", cwd=ROOT)
    assert command.stdout == module.stdout == in_repo.stdout
    for word in ("export", "pipelines", "exit codes"):
        assert word in command.stdout
    # with no settings, both refuse the same way (exit 2, naming what is missing)
    bare = {k: v for k, v in clean_env().items() if not k.startswith(("AZURE_", "TRANSFER_", "Transfer"))}
    refusals = [
        subprocess.run(command, cwd=cwd, env=bare, capture_output=True, text=True, timeout=60, check=False)
        for command, cwd in (
            ([str(installed / "transfer"), "runs"], elsewhere),
            ([sys.executable, "-m", "transfer", "runs"], ROOT),
        )
    ]
    assert [(r.returncode, r.stdout, r.stderr) for r in refusals] == [(2, "", refusals[1].stderr)] * 2
    assert "AZURE_SUBSCRIPTION_ID" in refusals[0].stderr
    # the dependencies it declares are satisfied, and the templates are read from inside the installed package
    run(installed / "python", "-m", "pip", "check", "--disable-pip-version-check", cwd=elsewhere)
    probe = (
        "import json; from transfer.adapters import templates; "
        "print(json.dumps([str(templates.TEMPLATES), templates.load(templates.EXPORT_PIPELINE)]))"
    )
    where, template = json.loads(run(installed / "python", "-c", probe, cwd=elsewhere).stdout)
    assert Path(where).parent.name == "transfer", where
    assert Path(where).parent.parent.name == "site-packages", where
    export = ROOT / "templates" / "export-pipeline" / "azuredeploy.json"
    assert template == json.loads(export.read_text(encoding="utf-8"))
