"""`POST /api/exports`: the handler's time against the one deployment PUT it makes.

On the source side (demo/stack.py: Azurite and the emulator), interleaved, REPEAT times each:
- handler: function_app.start_export with a one-artifact body (as the host calls it: a func.HttpRequest),
  once without and once with an Idempotency-Key;
- bare PUT: the same deployment (templates/pipelinerun-export, the same parameters, a new name) through
  the app's ARM adapter alone (`ArmResourceManager.begin_deployment`: one PUT, polling off).
Medians compared; budget: handler <= 2 x bare PUT. The requests of one handler call are counted (Table,
Blob, ARM), which is where any difference goes.

    .venv/bin/python -m bench.http_export [--repeat 30]      # under a minute
"""

from __future__ import annotations

import argparse
import uuid

from bench.common import Bench, Results, bench_stack, describe, function_app, header, median, ms, timed
from transfer.adapters import templates
from transfer.domain import naming
from transfer.domain.arm_views import run_parameters
from transfer.domain.runs import RunKind

BUDGET = 2.0
ARTIFACT = "samples/hello-world:v1"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    header("POST /api/exports vs the bare deployment PUT it makes")
    results = Results("http_export")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        measure(bench, results, args.repeat)
    results.summary()


def measure(bench: Bench, results: Results, repeat: int) -> None:
    app = function_app()
    source = bench.side("source")
    settings = source.service.settings
    template = templates.load(templates.EXPORT_RUN)
    tokens = iter(range(1, 1_000_000))

    def handler(key: str | None = None) -> None:
        headers = {"Idempotency-Key": key} if key else None
        body = {"artifacts": [ARTIFACT], "targetName": "httpbench"}
        status, answer = source.http(app.start_export, "POST", "exports", body, headers)
        assert status == 202, answer

    def bare_put() -> None:
        run_id = naming.run_id(RunKind.EXPORT, source.clock(), f"b{next(tokens):05x}")
        parameters = run_parameters(
            "export",
            registry=settings.registry,
            run_name=run_id,
            pipeline_id=settings.pipeline_id("export"),
            force_update_tag=naming.force_update_tag(run_id),
            artifacts=(ARTIFACT,),
            blob=naming.export_blob_name("httpbench", run_id),
        )
        source.ports.arm.begin_deployment(naming.deployment_name(run_id), template, parameters)

    def keyed() -> None:
        handler(f"bench-{uuid.uuid4().hex}")

    for call in (handler, keyed, bare_put):  # warm: clients, tokens, connections
        call()
    plain, with_key, bare = [], [], []
    for _ in range(repeat):
        plain += timed(handler, 1)
        with_key += timed(keyed, 1)
        bare += timed(bare_put, 1)
    with bench.arm.window() as arm, bench.traffic.window() as storage:
        handler()
    with bench.arm.window() as arm_keyed, bench.traffic.window() as storage_keyed:
        keyed()
    with bench.arm.window() as arm_bare:
        bare_put()
    results.info(f"{repeat} of each, interleaved; medians")
    results.info(f"bare deployment PUT: {ms(median(bare))}; ARM {len(arm_bare)} request")
    results.info(
        f"handler, no Idempotency-Key: {ms(median(plain))}; requests: {describe(storage)}, ARM {len(arm)}"
    )
    results.info(
        f"handler, Idempotency-Key: {ms(median(with_key))}; requests: {describe(storage_keyed)}, "
        f"ARM {len(arm_keyed)}"
    )
    results.budget("POST /api/exports / its bare deployment PUT", median(plain) / median(bare), BUDGET)
    results.budget(
        "POST /api/exports with an Idempotency-Key / its bare deployment PUT",
        median(with_key) / median(bare),
        BUDGET,
    )


if __name__ == "__main__":
    main()
