"""The CLI's parser: its commands, their options, and the exit codes its help lists."""

from __future__ import annotations

import argparse
from typing import Any

from transfer.domain.arm_views import EXPORT_OPTIONS, IMPORT_OPTIONS, STORAGE_ACCESS_MODES
from transfer.domain.runs import RunStatus

EPILOG = """\
exit codes:
  0  done (and with --wait: every run succeeded)
  1  a run failed or was canceled, a pipeline deployment failed, or health is unhealthy
  2  bad input, invalid or missing settings (each problem is printed), or a role this instance lacks
  3  not found (run, blob, pipeline, deployment)
  4  conflict (the run is still going, Idempotency-Key reused for another request, a race lost)
  5  transient: throttled, a dependency unavailable, some items deferred, or --wait timed out
 70  unexpected error (a bug; the traceback is printed)

settings (docs/settings.md) come from the Values of ./local.settings.json or of --settings FILE, the file
the Functions tools read, and from the environment, which wins over the file as with `func start`.
--output json prints the same keys as the HTTP API (a run is GET /api/runs/{id} without "url")."""


class _Commands:
    """Adds a command with the shared options (`--output`, and `parents` such as `--wait`)."""

    def __init__(self, commands: Any, output: argparse.ArgumentParser) -> None:
        self.commands = commands
        self.output = output

    def __call__(self, name: str, summary: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[self.output, *parents],
        )
        return parser


def build_parser() -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--output",
        "-o",
        choices=("table", "json"),
        default=argparse.SUPPRESS,
        help="table for people (default), json for scripts",
    )
    output.add_argument(
        "--settings",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="a local.settings.json to read Values from (default: ./local.settings.json if present); "
        "a setting in the environment wins",
    )
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--wait", action="store_true", help="reconcile and show progress until finished")
    waiting.add_argument(
        "--timeout", type=float, default=1800, metavar="SECONDS", help="give up waiting after (default 1800)"
    )
    waiting.add_argument(
        "--interval",
        type=float,
        default=10,
        metavar="SECONDS",
        help="the longest pause between polls: 0.5 s after the start, doubling up to it (default 10)",
    )

    parser = argparse.ArgumentParser(
        prog="python -m transfer",
        description="ACR Transfer automation: start exports and imports, follow runs, maintain pipelines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output],
    )
    command = _Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), output)
    _starting_commands(command, waiting)
    _reading_commands(command)
    _pipeline_commands(command, output, waiting)
    return parser


def _starting_commands(command: _Commands, waiting: argparse.ArgumentParser) -> None:
    export = command(
        "export",
        "Start an export of artifacts or selectors (more than 50 artifacts become several runs).",
        waiting,
    )
    export.add_argument(
        "artifacts",
        nargs="+",
        metavar="ARTIFACT",
        help="repo, repo:tag, repo@sha256:..., or a selector such as 'team/*:v1.*' (quote it)",
    )
    export.add_argument(
        "--incremental",
        action="store_true",
        help="leave out tags whose digest a succeeded export already sent; nothing new starts nothing",
    )
    export.add_argument("--target-name", help="blob name prefix (default: export)")
    export.add_argument("--idempotency-key", help="repeat-safe key: the same key returns the same runs")

    imp = command("import", "Start a manual import of a blob in the watched container.", waiting)
    imp.add_argument("blob", metavar="BLOB")
    imp.add_argument("--idempotency-key", help="repeat-safe key: the same key returns the same run")


def _reading_commands(command: _Commands) -> None:
    runs = command("runs", "List runs, newest first.")
    runs.add_argument("--kind", choices=("export", "import"))
    runs.add_argument("--status", choices=[s.value for s in RunStatus])
    runs.add_argument("--top", type=int, default=50, help="at most this many (1-1000, default 50)")
    runs.add_argument(
        "--all",
        action="store_true",
        help="every pipelineRun of the registry in ARM, whoever started it, beside the app's record of it "
        "(--kind, --status and --top do not apply)",
    )

    show = command("show", "Show one run.")
    show.add_argument("run_id", metavar="RUN_ID")

    blob = command(
        "blob", "The 60-day diagnosis of one blob of the watched container, and what happens next."
    )
    blob.add_argument("name", metavar="NAME")

    delete = command(
        "delete",
        "Start deleting a finished run's pipelineRun and deployment (as DELETE /api/runs/{id}); the next "
        "cleanup confirms the deletes and marks the run cleaned up.",
    )
    delete.add_argument("run_id", metavar="RUN")

    command("reconcile", "Read the state of every active run from ARM and record it (as the timer does).")
    command("sweep", "Apply the 60-day rule to every blob in the watched container (as the timer does).")
    cleanup = command("cleanup", "Delete the ARM resources of runs finished longer ago than the retention.")
    cleanup.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    command("health", "Check settings, state tables, ARM, the pipelines and SAS expiry.")


def _deploy_arguments(deploy: argparse.ArgumentParser) -> None:
    deploy.add_argument("kind", choices=("export", "import"))
    deploy.add_argument("--storage-uri", required=True, help="the storage container URL of the pipeline")
    deploy.add_argument(
        "--mode", choices=STORAGE_ACCESS_MODES, default="SasToken", help="storage access mode"
    )
    deploy.add_argument(
        "--key-vault", default="", metavar="NAME", help="Key Vault holding the SAS (SasToken)"
    )
    deploy.add_argument("--sas-secret", default="", metavar="NAME", help="secret name of the SAS (SasToken)")
    deploy.add_argument(
        "--key-vault-access",
        default="",
        choices=["AccessPolicy", "RoleAssignment", "None"],
        help="SasToken: how the pipeline may read the secret (default: detected: Key Vault Secrets User "
        "on an RBAC vault, an access policy otherwise)",
    )
    deploy.add_argument(
        "--option",
        action="append",
        default=[],
        choices=sorted({*EXPORT_OPTIONS, *IMPORT_OPTIONS}),
        help="pipeline option, repeatable",
    )
    deploy.add_argument(
        "--no-source-trigger", action="store_true", help="import only: disable the source trigger"
    )
    deploy.add_argument("--user-assigned-identity", default="", metavar="ID", help="identity resource ID")
    deploy.add_argument(
        "--grant-storage-role",
        action="store_true",
        help="ManagedIdentity mode: grant Storage Blob Data Contributor on its account (same group)",
    )


def _pipeline_commands(
    command: _Commands, output: argparse.ArgumentParser, waiting: argparse.ArgumentParser
) -> None:
    pipelines = command(
        "pipelines", "Deploy, show, list or delete the export and import pipelines (templates/)."
    )
    actions = pipelines.add_subparsers(dest="action", required=True, metavar="ACTION")
    deploy = actions.add_parser(
        "deploy",
        help="deploy the pipeline named by TRANSFER_EXPORT_PIPELINE / TRANSFER_IMPORT_PIPELINE",
        description="Deploy the export or import pipeline template with these parameters.",
        parents=[output, waiting],
    )
    _deploy_arguments(deploy)
    migrate = actions.add_parser(
        "migrate",
        help="move the configured pipeline from SasToken to ManagedIdentity, keeping its name",
        description="Recreate the pipeline in ManagedIdentity mode (same name, URI, options, identity); "
        "refused while its runs are active; a pipeline already there is left as it is.",
        parents=[output, waiting],
    )
    migrate.add_argument("kind", choices=("export", "import"))
    migrate.add_argument("--to", required=True, choices=["ManagedIdentity"], help="the storage access mode")
    show_pipeline = actions.add_parser(
        "show", help="show the pipeline as ARM has it", description="Show the pipeline.", parents=[output]
    )
    show_pipeline.add_argument("kind", choices=("export", "import"))
    actions.add_parser(
        "list",
        help="every export and import pipeline of the registry, configured or not",
        description="List every export and import pipeline of the registry, whoever deployed it.",
        parents=[output],
    )
    delete_pipeline = actions.add_parser(
        "delete",
        help="delete a pipeline (refuses the one this instance is configured with unless --force)",
        description="Delete an export or import pipeline of the registry through ARM.",
        parents=[output],
    )
    delete_pipeline.add_argument("kind", choices=("export", "import"))
    delete_pipeline.add_argument("name", metavar="NAME")
    delete_pipeline.add_argument(
        "--force", action="store_true", help="delete it even if this instance is configured with it"
    )
