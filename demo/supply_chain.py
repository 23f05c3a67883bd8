"""The demo's supply-chain steps (issue 23): a signed image with an SBOM exported by a selector, its signed
manifest, the import verified with both referrers linked on the target; a signature added later carried
by the next incremental export; a layer over 8 GB refused before any run."""

from __future__ import annotations

from typing import Any

from demo import stack as demo_stack
from transfer.domain.runs import Run

SIGNATURE = "application/vnd.cncf.notary.signature"
SBOM = "application/spdx+json"
SELECTOR = "secure/*:v1"
REPOSITORIES = ("secure/app",)  # what reaches the target registry (secure/huge is refused)


def supply_chain(
    story: Any,
    stack: Any,
    source: Any,
    target: Any,
    app: Any,
    reconcile_until: Any,
    imported_and_verified: Any,
    manifest_of: Any,
) -> None:
    admin = stack.emulator.admin
    registry = demo_stack.SOURCE_REGISTRY
    story.step("A signed image with an SBOM: export it by a selector; its referrers travel with it")
    image = admin.add_image(registry, "secure/app", "v1", [2048, 4096])["digest"]
    signature = admin.attach_referrer(registry, "secure/app", image, SIGNATURE, payload="notation")["digest"]
    sbom = admin.attach_referrer(registry, "secure/app", image, SBOM, payload='{"spdxVersion": "SPDX-2.3"}')
    body = {"artifacts": [SELECTOR], "targetName": "secure", "incremental": True}
    status, accepted = source.http(app.start_export, "POST", "exports", body)
    [run] = accepted["runs"]
    wanted = ["secure/app:v1", f"secure/app@{signature}", f"secure/app@{sbom['digest']}"]
    story.check(
        status == 202 and run["artifacts"] == wanted, f"one run: the image and its 2 referrers: {wanted}"
    )
    [exported] = reconcile_until(story, source, app, [run["id"]], copies=True)
    manifest = manifest_of(stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, exported.manifest)
    listed = {(r["digest"], r["artifactType"], r["subject"]) for r in manifest["referrers"]}
    story.check(
        listed == {(signature, SIGNATURE, image), (sbom["digest"], SBOM, image)},
        "the manifest lists each referrer with its digest, artifactType and subject",
    )
    story.check(
        _signed(stack, exported), f"{exported.manifest}.sig beside it: signed with the source vault's key"
    )
    verified = imported_and_verified(story, stack, target, app, exported)
    story.check(
        verified.verification == "passed" and "2 referrers linked" in (verified.verification_detail or ""),
        f"the signature checked with the public key, the import verified: {verified.verification_detail}",
    )
    linked = {(r["digest"], r["subject"]) for r in admin.referrers(demo_stack.TARGET_REGISTRY)}
    story.check(
        {(signature, image), (sbom["digest"], image)} <= linked,
        "the target registry's referrers API lists both under the image",
    )

    story.step("A signature added to the exported image later: the next incremental export carries it alone")
    late = admin.attach_referrer(registry, "secure/app", image, SIGNATURE, payload="countersign")["digest"]
    status, again = source.http(app.start_export, "POST", "exports", body)
    [run] = again["runs"]
    story.check(
        run["artifacts"] == [f"secure/app@{late}"] and again["skipped"] == ["secure/app:v1"],
        f"one run with the new signature only (the image unchanged, skipped): secure/app@{late[:19]}…",
    )
    [exported] = reconcile_until(story, source, app, [run["id"]], copies=True)
    verified = imported_and_verified(story, stack, target, app, exported)
    story.check(verified.verification == "passed", f"its import verified: {verified.verification_detail}")

    story.step("An image with a layer over 8 GB: refused before any run")
    admin.add_image(registry, "secure/huge", "v1", [1024, 9 * 10**9])
    before = len(source.service.list_runs(kind="export"))
    status, refused = source.http(app.start_export, "POST", "exports", {"artifacts": ["secure/huge:v1"]})
    message = (refused.get("error") or {}).get("message", "") if isinstance(refused, dict) else ""
    story.check(status == 400 and "8 GB" in message, f"400: {message[:120]}")
    story.check(len(source.service.list_runs(kind="export")) == before, "no run recorded, nothing deployed")


def _signed(stack: Any, run: Run) -> bool:
    from azure.storage.blob import BlobClient

    from transfer.adapters.signing import PublicKeyVerifier

    def read(name: str) -> bytes:
        client = BlobClient.from_connection_string(
            stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER, name
        )
        return bytes(client.download_blob().readall())

    assert run.manifest is not None
    verifier = PublicKeyVerifier(stack.target_env["TRANSFER_MANIFEST_VERIFY_KEY"])
    return verifier.problem(read(run.manifest), read(f"{run.manifest}.sig")) is None
