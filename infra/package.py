#!/usr/bin/env python3
"""Builds the function app's deployment package (`make package`): a zip of the repository without what
`.funcignore` excludes (gitignore syntax, as `func azure functionapp publish` reads it).

    python3 infra/package.py [--output dist/functionapp.zip] [--list] [--with-dependencies]

The package holds function_app.py, host.json, requirements.txt, transfer/ and templates/. Whatever
`.funcignore` says, it never holds local settings, a virtual environment, tests, docs, the emulator, bench,
demo or key material: the build stops naming the file instead. The zip is reproducible (sorted entries, fixed
timestamps), so its SHA-256, printed at the end, identifies a release.

Flex Consumption builds the dependencies remotely from requirements.txt. Elastic Premium and Dedicated plans
run the package from its blob (infra/main.json), without a build: `--with-dependencies` installs
requirements.txt's wheels for Linux x86_64 and the Python version infra/main.json deploys into
`.python_packages/lib/site-packages`, where the Functions host looks for them. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path("dist") / "functionapp.zip"
SITE_PACKAGES = ".python_packages/lib/site-packages"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: the same tree gives the same bytes

# What the package must hold, and what it never may (checked after .funcignore, relative POSIX paths).
REQUIRED = ("function_app.py", "host.json", "requirements.txt", "transfer/__init__.py", "templates/")
NEVER = re.compile(
    r"""(^|/)local\.settings\.json$            # the app's local settings (connection strings)
      | (^|/)\.venv[^/]*/                       # virtual environments
      | ^(tests|docs|emulator|bench|demo|tools|\.serve|\.git)/   # tests, docs, dev tools, served settings
      | (^|/)conftest\.py$
      | \.(pem|key|pfx|p12)$ | (^|/)\.env(\.[^/]*)?$      # key material
    """,
    re.VERBOSE,
)


class PackageError(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    negated: bool
    directory_only: bool


def _translate(glob: str) -> str:
    """A gitignore glob (no leading or trailing slash left) as a regular expression for a whole path."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i) and (i == 0 or glob[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body + "]")
            i = end + 1
        elif glob[i] == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def parse_ignore(text: str) -> list[Rule]:
    """The rules of a .gitignore-syntax file, in order (the last rule that matches a path decides)."""
    rules = []
    for raw in text.splitlines():
        line = re.sub(r"(?<!\\)\s+$", "", raw)
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated or line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        glob = line.lstrip("/")
        if not glob:
            continue
        expression = _translate(glob)
        if not anchored:
            expression = "(?:.*/)?" + expression
        rules.append(Rule(re.compile(expression + r"\Z"), negated, directory_only))
    return rules


def ignored(path: str, is_dir: bool, rules: Iterable[Rule]) -> bool:
    verdict = False
    for rule in rules:
        if (is_dir or not rule.directory_only) and rule.pattern.match(path):
            verdict = not rule.negated
    return verdict


def included_files(root: Path, rules: list[Rule]) -> list[str]:
    """Every file under `root` that the rules leave in; an ignored folder is not entered (as git does)."""
    found: list[str] = []
    seen: set[Path] = set()

    def walk(folder: Path, prefix: str) -> None:
        real = folder.resolve()
        if real in seen:  # a symbolic link back up the tree
            return
        seen.add(real)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path = prefix + entry.name
            is_dir = entry.is_dir()  # follows links, as zip -r and Core Tools do
            if ignored(path, is_dir, rules):
                continue
            if is_dir:
                walk(Path(entry.path), path + "/")
            elif entry.is_file():
                found.append(path)

    walk(root, "")
    return found


def check(files: list[str]) -> None:
    forbidden = [f for f in files if NEVER.search(f)]
    if forbidden:
        raise PackageError(
            f"refusing to package {', '.join(forbidden[:5])}{' ...' if len(forbidden) > 5 else ''}: "
            ".funcignore lets in what a deployment package must never hold (local settings, a venv, tests, "
            "docs, dev tools, key material); exclude it there"
        )
    missing = [r for r in REQUIRED if not any(f == r or (r.endswith("/") and f.startswith(r)) for f in files)]
    if missing:
        raise PackageError(f"the package would lack {', '.join(missing)}: is .funcignore excluding it?")


def deployed_python_version(root: Path) -> str:
    """The Python version infra/main.json deploys, the one the dependencies must be built for."""
    template = json.loads((root / "infra" / "main.json").read_text(encoding="utf-8"))
    version: str = template["variables"]["pythonVersion"]
    return version


def vendor(requirements: Path, target: Path, python_version: str) -> None:
    """requirements.txt's wheels for the Functions host's Linux x86_64 and Python, into `target`."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--requirement", str(requirements), "--target", str(target),
        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
        "--implementation", "cp", "--python-version", python_version, "--only-binary=:all:",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackageError(
            f"pip could not install requirements.txt for Python {python_version}:\n{done.stderr}"
        )


def _tree(base: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    for path in sorted(base.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield prefix + path.relative_to(base).as_posix(), path


def write_zip(output: Path, entries: Iterable[tuple[str, Path]]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    partial.replace(output)  # a failed build never leaves a half-written package under the real name


def build(root: Path, output: Path, *, with_dependencies: bool = False) -> list[str]:
    """Writes the package and returns its entries."""
    funcignore = root / ".funcignore"
    rules = parse_ignore(funcignore.read_text(encoding="utf-8")) if funcignore.exists() else []
    files = included_files(root, rules)
    check(files)
    entries = [(name, root / name) for name in files]
    with tempfile.TemporaryDirectory(prefix="functionapp-") as scratch:
        if with_dependencies:
            target = Path(scratch) / "site-packages"
            vendor(root / "requirements.txt", target, deployed_python_version(root))
            entries += list(_tree(target, SITE_PACKAGES + "/"))
        write_zip(output, entries)
    return sorted(name for name, _ in entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra/package.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    parser.add_argument("--list", action="store_true", help="print every file of the package")
    parser.add_argument(
        "--with-dependencies",
        action="store_true",
        help="install requirements.txt into the package (Elastic Premium and Dedicated plans)",
    )
    args = parser.parse_args(argv)
    output = args.output if args.output.is_absolute() else Path.cwd() / args.output
    try:
        names = build(ROOT, output, with_dependencies=args.with_dependencies)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.list:
        print("\n".join(names))
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    size = output.stat().st_size
    print(f"{output}: {len(names)} files, {size / 1024:.0f} KiB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
