"""The Functions deployment package (`make package`, infra/package.py): what .funcignore leaves out, judged
as git judges the same patterns, and what a package must and must never hold."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
GIT = shutil.which("git")
MAKE = shutil.which("make")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package_script", ROOT / "infra" / "package.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


package = load_script()

MUST = {
    "function_app.py",
    "host.json",
    "requirements.txt",
    "transfer/__init__.py",
    "transfer/entrypoints/cli/__init__.py",
}
# What a careless zip of the working tree would carry: a developer's settings, venvs, what `make serve`
# writes, caches, key material, an old package, and everything that is not the app.
HOSTILE = [
    "local.settings.json",
    "transfer/local.settings.json",
    ".venv-py313/lib/site.py",
    ".serve/source.settings.json",
    ".env",
    "certs/server.pem",
    "transfer/__pycache__/cli.cpython-311.pyc",
    "dist/functionapp.zip",
    "old-app.zip",
    "node_modules/azurite/package.json",
    "acme.egg-info/PKG-INFO",
]


def tracked_files() -> list[str]:
    listed = subprocess.run([str(GIT), "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the repository's files with the hostile ones beside them."""
    root = tmp_path / "repo"
    for name in tracked_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    for name in HOSTILE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("AccountKey=SENTINEL\n")
    return root


def listing(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return archive.namelist()


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_the_package_is_what_git_leaves_when_funcignore_is_the_ignore_file(
    tree: Path, tmp_path: Path
) -> None:
    names = package.build(tree, tmp_path / "app.zip")
    subprocess.run([str(GIT), "init", "--quiet"], cwd=tree, check=True)
    kept = subprocess.run(
        [
            str(GIT),
            "-c",
            f"core.excludesFile={tree / '.funcignore'}",
            "ls-files",
            "--others",
            "--exclude-standard",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert names == sorted(kept)
    assert listing(tmp_path / "app.zip") == names


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_the_package_holds_the_app_and_nothing_a_deployment_must_not_carry(
    tree: Path, tmp_path: Path
) -> None:
    names = package.build(tree, tmp_path / "app.zip")
    assert set(names) >= MUST
    assert {n for n in names if n.startswith("templates/")} >= {
        f"templates/{kind}/azuredeploy.json"
        for kind in ("export-pipeline", "import-pipeline", "pipelinerun-export", "pipelinerun-import")
    }
    tops = {name.split("/")[0] for name in names}
    assert tops == {"function_app.py", "host.json", "requirements.txt", "transfer", "templates"}
    for name in names:
        assert "SENTINEL" not in (tree / name).read_text(encoding="utf-8"), name
        assert not package.NEVER.search(name), name


def test_the_same_tree_gives_the_same_bytes(tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one.zip", tmp_path / "two.zip"
    package.build(tree, first)
    (tree / "transfer" / "__main__.py").touch()  # a new mtime changes nothing
    package.build(tree, second)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ("!local.settings.json", "local.settings.json"),
        ("!/tests/", "tests/"),
        ("!.venv*", ".venv-py313/lib/site.py"),
        ("!*.pem", "certs/server.pem"),
        ("!/docs/", "docs/"),
        ("!/emulator/", "emulator/"),
    ],
)
def test_a_funcignore_that_lets_in_what_must_stay_out_stops_the_build(
    tree: Path, tmp_path: Path, line: str, refused: str
) -> None:
    funcignore = tree / ".funcignore"
    funcignore.write_text(funcignore.read_text(encoding="utf-8") + line + "\n")
    with pytest.raises(package.PackageError, match="refusing to package") as caught:
        package.build(tree, tmp_path / "app.zip")
    assert refused in str(caught.value)
    assert not (tmp_path / "app.zip").exists()


def test_a_package_without_the_app_is_refused(tree: Path, tmp_path: Path) -> None:
    funcignore = tree / ".funcignore"
    funcignore.write_text(funcignore.read_text(encoding="utf-8") + "/templates/\n")
    with pytest.raises(package.PackageError, match="lack templates/"):
        package.build(tree, tmp_path / "app.zip")


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "expected"),
    [
        ("*.pyc", "a/b/c.pyc", False, True),
        ("/dist/", "dist", True, True),
        ("/dist/", "sub/dist", True, False),
        ("dist/", "dist", False, False),  # a file named dist is not the folder
        ("docs", "x/docs", True, True),
        ("a/**/z", "a/z", False, True),
        ("a/**/z", "a/b/c/z", False, True),
        ("a/**", "a/b/c", False, True),
        ("**/cache", "x/y/cache", True, True),
        ("file[0-9].txt", "file7.txt", False, True),
        ("file[!0-9].txt", "file7.txt", False, False),
        ("*.log\n!keep.log", "keep.log", False, False),
        ("\\#hash", "#hash", False, True),
        ("# a comment\n\n", "# a comment", False, False),
        ("trailing   ", "trailing", False, True),
        ("a?c", "a/c", False, False),
    ],
)
def test_funcignore_patterns_follow_gitignore(patterns: str, path: str, is_dir: bool, expected: bool) -> None:
    assert package.ignored(path, is_dir, package.parse_ignore(patterns)) is expected


def test_the_script_prints_the_package_and_its_digest(tmp_path: Path) -> None:
    output = tmp_path / "functionapp.zip"
    done = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "package.py"), "--output", str(output), "--list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[:-1] == listing(output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert (
        lines[-1]
        == f"{output}: {len(lines) - 1} files, {output.stat().st_size / 1024:.0f} KiB, sha256 {digest}"
    )
    assert set(lines) >= MUST


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_package_runs_the_script() -> None:
    done = subprocess.run(
        [str(MAKE), "--no-print-directory", "-n", "package"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "infra/package.py" in done.stdout


def test_with_dependencies_the_package_carries_wheels_for_the_deployed_python_on_linux(
    tree: Path, tmp_path: Path
) -> None:
    """Elastic Premium and Dedicated run the zip as it is: its dependencies go into .python_packages, built
    for Linux x86_64 and the Python version infra/main.json deploys (one small requirement with a compiled
    part stands in for requirements.txt, to keep the download small)."""
    (tree / "requirements.txt").write_text("markupsafe==3.0.2\n")
    version = package.deployed_python_version(tree)
    names = package.build(tree, tmp_path / "app.zip", with_dependencies=True)
    vendored = [n for n in names if n.startswith(".python_packages/lib/site-packages/")]
    tag = f"cpython-{version.replace('.', '')}-x86_64-linux-gnu"
    assert any(
        n.startswith(".python_packages/lib/site-packages/markupsafe/_speedups.") and tag in n
        for n in vendored
    )
    assert not [n for n in vendored if "__pycache__" in n]
    assert set(names) - set(vendored) == set(package.build(tree, tmp_path / "plain.zip"))
