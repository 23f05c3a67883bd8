"""Every shell block of README.md, docs/, infra/, templates/, emulator/ and bench/'s READMEs is either run by
a test (named here, as written or with the one change the entry says) or listed as not runnable here with
the reason. A new block that is neither fails this test, and so does an entry whose block is gone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_blocks import ROOT, Block, block, blocks, documents

BASH = shutil.which("bash") or "/bin/bash"
RUN = "run"
NOT_HERE = "not runnable here"
# (document, the block's first line begins with) -> (RUN, the test that runs it) or (NOT_HERE, why)
REGISTRY: dict[tuple[str, str], tuple[str, str]] = {
    ("README.md", "make demo"): (RUN, ".ci/run runs both commands in a fresh clone; make test is this suite"),
    ("README.md", "make serve"): (
        NOT_HERE,
        "fixed ports 7071/7072 on a machine shared by parallel runs; tests/test_processes.py runs make serve "
        "on free ports and tests/functions every HTTP function these requests call",
    ),
    ("README.md", "python -m transfer --settings .serve/"): (
        RUN,
        "tests/test_processes.py::test_the_served_settings_files_point_a_cli_at_each_side (as written, in a "
        "folder whose .serve/ make serve wrote)",
    ),
    ("README.md", 'export PATH="$PWD/.venv-azcli/bin:$PATH"'): (
        RUN,
        "tests/conformance/test_readme_rehearsal.py",
    ),
    ("README.md", "python -m transfer pipelines deploy export"): (
        NOT_HERE,
        "examples of the CLI against a real subscription (src.blob.core.windows.net, srcvault); "
        "tests/test_cli.py runs each command and option",
    ),
    ("docs/supply-chain.md", "openssl dgst -sha256 -verify public.pem"): (
        RUN,
        "tests/integration/test_signing_emulator.py::test_the_documented_openssl_command_verifies_a_signed_"
        "manifest (the block as written, BLOB and public.pem those of a manifest the app signed)",
    ),
    ("docs/deploy.md", "infra/deploy-side.sh target"): (
        RUN,
        "tests/conformance/test_doc_blocks.py (PUBLISH=print: no Functions host to publish to)",
    ),
    ("docs/deploy.md", "az deployment group show -g acr-transfer-source-rg"): (
        NOT_HERE,
        "the CLI with an operator's `az login` against a real tenant and storage account; "
        "tests/unit/entrypoints/test_settings_file.py reads such a file, test_processes.py runs one",
    ),
    ("docs/deploy.md", "python -m transfer --settings source.settings.json pipelines deploy"): (
        NOT_HERE,
        "needs a real registry, storage account and vault; tests/test_cli.py and "
        "tests/integration run pipelines deploy against fakes and the emulator",
    ),
    ("docs/deploy.md", "az deployment group create -g registry-rg"): (
        NOT_HERE,
        "the example parameter files name a registry and vault of a real subscription; "
        "tests/conformance/test_guide.py runs the same az commands with templates of every official shape",
    ),
    ("docs/deploy.md", "az group create -n acr-transfer-rg"): (RUN, "tests/conformance/test_doc_blocks.py"),
    ("docs/deploy.md", "az deployment group create -g acr-transfer-rg -n acrtransfer-app"): (
        RUN,
        "tests/conformance/test_doc_blocks.py",
    ),
    ("docs/deploy.md", "make package        #"): (
        NOT_HERE,
        "config-zip publishes to a Functions host (Kudu); tests/test_deployment_package.py builds and lists "
        "the package, tests/conformance/test_deploy_side.py checks the command deploy-side.sh would run",
    ),
    ("docs/deploy.md", "make package PACKAGE_ARGS=--with-dependencies"): (
        NOT_HERE,
        "uploads to a real storage account with the operator's Entra ID sign-in (az ad signed-in-user)",
    ),
    ("docs/deploy.md", "infra/deploy-eventgrid.sh acr-transfer-rg acrtransfer-app"): (
        RUN,
        "tests/conformance/test_infra_cli.py (the same command in infra/README.md's deploy block)",
    ),
    ("docs/deploy.md", "KEY=$(az functionapp function keys list"): (
        NOT_HERE,
        "calls the app's HTTPS endpoint on azurewebsites.net; tests/functions run GET /api/health",
    ),
    ("docs/deploy.md", "old=$(git rev-parse --short HEAD)"): (
        NOT_HERE,
        "git fetch of a newer version and a real subscription (what-if)",
    ),
    ("docs/deploy.md", 'git checkout "$old"'): (NOT_HERE, "publishes to a Functions host"),
    ("docs/operations.md", "group=<storage account's group>"): (
        NOT_HERE,
        "account keys and SAS of a real storage account and vault (Azurite has no ARM keys API)",
    ),
    ("docs/operations.md", "python -m transfer pipelines migrate import"): (
        NOT_HERE,
        "migrates a live pipeline of a real registry; tests/unit/service/test_migrate.py and "
        "tests/integration/test_lockdown_emulator.py run migrate",
    ),
    ("docs/performance.md", "make bench"): (
        NOT_HERE,
        "about 17 minutes; tests/test_bench_smoke.py runs every benchmark at tiny sizes",
    ),
    ("infra/README.md", "az group create -n acr-transfer-rg"): (RUN, "tests/conformance/test_infra_cli.py"),
    ("infra/README.md", "az role assignment create --assignee-object-id <principalId>"): (
        NOT_HERE,
        "a template with placeholders; deploy-side.sh makes these grants "
        "(tests/conformance/test_deploy_side.py)",
    ),
    ("infra/README.md", "infra/deploy-eventgrid.sh <resource group"): (
        NOT_HERE,
        "the usage line with placeholders; tests/conformance/test_infra_cli.py runs the script",
    ),
    ("templates/README.md", "# export pipeline, SasToken mode"): (
        NOT_HERE,
        "the parameter files name a real registry and vault; tests/test_templates.py evaluates every variant",
    ),
    ("emulator/README.md", "python -m emulator --with-azurite                       #"): (
        NOT_HERE,
        "the options, not a script; tests/test_processes.py starts and stops "
        "python -m emulator --with-azurite",
    ),
    ("emulator/README.md", "python -m emulator --with-azurite > emulator.env &"): (
        RUN,
        "tests/test_doc_blocks.py::test_emulator_readme_sourcing_block_runs_as_written",
    ),
    ("emulator/README.md", 'source "$EMULATOR_AZ_ENV"'): (
        RUN,
        "tests/conformance/conftest.py (az_session: the same az commands, with az.env read into the "
        "environment, before every conformance test)",
    ),
    ("bench/README.md", ".venv/bin/python -m bench.cold_start"): (
        NOT_HERE,
        "minutes each at full size; tests/test_bench_smoke.py runs every benchmark at tiny sizes",
    ),
    ("bench/README.md", ".venv/bin/python -m bench.active_runs"): (
        NOT_HERE,
        "a minute at full size; tests/test_bench_smoke.py runs it at tiny sizes",
    ),
}


def all_blocks() -> list[Block]:
    return [found for document in documents() for found in blocks(document)]


def entry(found: Block) -> tuple[str, str] | None:
    matches = [key for key in REGISTRY if key[0] == found.document and found.first.startswith(key[1])]
    assert len(matches) <= 1, f"{found.document}:{found.line} matches several entries: {matches}"
    return matches[0] if matches else None


def test_every_shell_block_is_run_or_listed_with_its_reason() -> None:
    missing = [f"{b.document}:{b.line}: {b.first}" for b in all_blocks() if entry(b) is None]
    assert not missing, (
        "shell blocks that no test runs and that are not listed as not runnable here (add a test that runs "
        "them, or an entry to REGISTRY with the reason):\n" + "\n".join(missing)
    )


def test_no_entry_outlives_its_block() -> None:
    used = {entry(b) for b in all_blocks()}
    assert not [key for key in REGISTRY if key not in used]


def test_each_entry_says_how() -> None:
    for (document, _), (verdict, how) in REGISTRY.items():
        assert verdict in (RUN, NOT_HERE)
        assert how.strip()
        if verdict == RUN and how.startswith("tests/"):
            assert (ROOT / how.split("::")[0].split()[0]).exists(), (document, how)


def test_emulator_readme_sourcing_block_runs_as_written(tmp_path: Path) -> None:
    written = block("emulator/README.md", "python -m emulator --with-azurite > emulator.env &").text
    probe = 'test -n "$AZURITE_CONNECTION_STRING" && test -n "$EMULATOR_ARM_ENDPOINT" && echo sourced'
    script = f"{written}\n{probe}\nkill $!; wait $! || true\n"
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
    }
    process = subprocess.Popen(
        [BASH, "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        pytest.fail(f"the block did not finish: {err}")
    assert process.returncode == 0, err
    assert out.strip().splitlines()[-1] == "sourced"
    assert (tmp_path / "emulator.env").is_file()
