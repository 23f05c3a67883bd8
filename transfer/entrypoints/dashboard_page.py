"""GET /api/dashboard as HTML: the DashboardView (transfer/service/dashboard.py) rendered on the server,
every text escaped and scrubbed of secrets (dashboard_svg.e), charts as inline SVG, one small script of
our own (the SAS countdown) allowed by hash in the page's Content-Security-Policy, no external URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from transfer.entrypoints.dashboard_svg import (
    COUNTDOWN_SCRIPT,
    CSP,
    STATUS_COLORS,
    VERIFICATION_COLORS,
    age_bar,
    countdown,
    e,
    iso,
    legend,
    q,
    stacked_bars,
    when,
)

if TYPE_CHECKING:
    from transfer.domain.runs import Run
    from transfer.service import Check
    from transfer.service.dashboard import DashboardView, History, Plan, RunsPage, Section
    from transfer.service.dashboard_blobs import BlobRow, BlobsView

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}td,th{border-bottom:1px solid #e4e4e4;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f5f5f5}.bad{color:#c62828;font-weight:600}
.ok{color:#2e7d32}.warn{color:#ef6c00}.muted{color:#777}.swatch{display:inline-block;width:10px;
height:10px;margin:0 4px 0 10px}.waiting td{background:#fff3e0}.hint{color:#5d4037}code{font-size:12px}
nav a{margin-right:1em}.charts{display:flex;gap:1.5em;flex-wrap:wrap}.error{color:#c62828}
"""


def run_link(run_id: str, base: str) -> str:
    return f'<a class="run" href="{e(base)}runs/{q(run_id)}">{e(run_id)}</a>'


def page_link(text: str, before: str | None, marker: str | None) -> str:
    params = [f"runs={q(before)}" if before else "", f"blobs={q(marker)}" if marker else ""]
    query = "&amp;".join(p for p in params if p)
    return f'<a href="?{query}">{e(text)}</a>'


def _failed(section: Section[Any]) -> str:
    return f'<p class="error">could not be read: {e(section.error)}</p>'


def render(view: DashboardView, base: str) -> str:
    settings = view.settings
    roles = ", ".join(view.roles) or "none"
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        f"<title>ACR Transfer: {e(settings.registry)}</title><style>{STYLE}</style></head>",
        f'<body data-now="{e(iso(view.now))}">',
        f"<h1>ACR Transfer: registry {e(settings.registry)}</h1>",
        f'<p class="muted">roles: {e(roles)}; as of {e(when(view.now))}; '
        f'<a href="{e(base)}health">health JSON</a> · <a href="{e(base)}runs">runs JSON</a></p>',
        '<nav><a href="#health">health</a><a href="#history">runs over time</a>'
        '<a href="#failures">failures</a>'
        '<a href="#imports">imports</a><a href="#blobs">watched container</a><a href="#next">next</a>'
        '<a href="#runs">runs</a></nav>',
        _health(view),
        _history(view.history, base),
        _imports(view.history, base),
    ]
    if view.blobs is not None:
        parts.append(_blobs(view.blobs, view, base))
    parts += [_next(view), _runs(view.runs, view.blobs, base)]
    parts.append(f"<script>{COUNTDOWN_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _check_rows(checks: list[Check]) -> str:
    return "".join(
        f'<tr class="check" data-ok="{str(c.ok).lower()}"><td>{e(c.name)}</td>'
        f'<td class="{"ok" if c.ok else "bad"}">{"ok" if c.ok else "failing"}</td><td>{e(c.detail)}</td></tr>'
        for c in checks
    )


def _sas_items(view: DashboardView) -> str:
    items = []
    for found in view.sas:
        if found.error is not None:
            items.append(f'<li class="error">a pipeline SAS could not be read: {e(found.error)}</li>')
        elif found.value is not None and found.value.expires_at is None:
            items.append(f"<li>{e(found.value.kind)} pipeline SAS: no expiry</li>")
        elif found.value is not None and found.value.expires_at is not None:
            expires = found.value.expires_at
            items.append(
                f'<li class="sas">{e(found.value.kind)} pipeline SAS expires '
                f"{countdown(expires, view.now)} ({e(when(expires))})</li>"
            )
    return "".join(items)


def _health(view: DashboardView) -> str:
    """Failing checks in full; the passing ones folded (a click opens them; no script needed)."""
    failing = [c for c in view.checks if not c.ok]
    passing = [c for c in view.checks if c.ok]
    status = '<span class="bad">unhealthy</span>' if failing else '<span class="ok">healthy</span>'
    head = "<tr><th>check</th><th></th><th>detail</th></tr>"
    shown = f"<table>{head}{_check_rows(failing)}</table>" if failing else ""
    folded = (
        f"<details><summary>{len(passing)} checks ok</summary><table>{head}{_check_rows(passing)}</table>"
        "</details>"
    )
    return f'<h2 id="health">Health: {status}</h2><ul>{_sas_items(view)}</ul>{shown}{folded}'


def _history(history: Section[History], base: str) -> str:
    head = '<h2 id="history">Runs over time</h2>'
    if history.value is None:
        return head + _failed(history)
    found = history.value
    note = ""
    if not found.complete:
        note = (
            f'<p class="warn">counted from the newest {len(found.runs)} runs, which reach back to '
            f"{e(when(found.reaches))} only</p>"
        )
    charts, tables = [], []
    for window in found.windows:
        step = {"24h": "hour", "7d": "6 hours", "30d": "day"}[window.name]
        charts.append(stacked_bars(window.buckets, f"last {window.name}", step))
        cells = "".join(
            f"<tr><td>{e(kind)}</td><td>{e(status)}</td><td>{count}</td></tr>"
            for (kind, status), count in sorted(window.counts.items())
        )
        total = sum(window.counts.values())
        tables.append(
            f'<table class="counts" data-window="{e(window.name)}"><tr><th colspan=3>last {e(window.name)}: '
            f"{total} runs</th></tr>{cells}</table>"
        )
    failures = _failures(found.failures(), base)
    return (
        f'{head}{note}<p>{legend(STATUS_COLORS)}</p><div class="charts">{"".join(charts)}</div>'
        f'<div style="display:flex;gap:2em">{"".join(tables)}</div>{failures}'
    )


def _failures(runs: list[Run], base: str) -> str:
    rows = "".join(
        f'<tr class="failure"><td>{run_link(run.id, base)}</td><td>{e(run.kind.value)}</td>'
        f"<td>{e(when(run.finished_at or run.updated_at))}</td><td><b>{e(run.error_cause or 'unknown cause')}"
        f'</b><div class="hint">{e(run.hint or "see the error")}</div></td><td>{e(run.error)}</td></tr>'
        for run in runs
    )
    if not rows:
        return '<h2 id="failures">Failures</h2><p class="ok">no failed run among the newest runs</p>'
    return (
        '<h2 id="failures">Failures</h2><table><tr><th>run</th><th>kind</th><th>finished</th>'
        f"<th>cause and hint</th><th>error</th></tr>{rows}</table>"
    )


def _imports(history: Section[History], base: str) -> str:
    head = '<h2 id="imports">Imports and their verification</h2>'
    if history.value is None:
        return head + _failed(history)
    found = history.value
    counts = found.verifications()
    summary = " ".join(
        f'<span class="verification-count" data-verification="{e(name)}">'
        f'<span class="swatch" style="background:{color}"></span>{e(name)}: {counts.get(name, 0)}</span>'
        for name, color in VERIFICATION_COLORS.items()
    )
    rows = "".join(
        f'<tr class="verification" data-verification="{e(_verification(run))}">'
        f"<td>{run_link(run.id, base)}</td><td>{e(run.blob or '—')}</td>"
        f"<td>{e(run.verification.value if run.verification else '—')}</td>"
        f"<td>{e(run.verification_detail or '')}</td>"
        f"<td>{e(', '.join(run.skipped_artifacts) or '—')}</td></tr>"
        for run in found.verification_problems()
    )
    table = (
        "<table><tr><th>run</th><th>blob</th><th>verification</th><th>what differs</th>"
        f"<th>skipped artifacts</th></tr>{rows}</table>"
        if rows
        else '<p class="ok">every import verified or pending</p>'
    )
    among = f"{len(found.imports())} imports among the newest {len(found.runs)} runs"
    return f"{head}<p>{among}: {summary}</p>{table}"


def _verification(run: Run) -> str:
    return run.verification.value if run.verification else ""


def _blob_rows(rows: list[BlobRow], found: BlobsView, base: str) -> str:
    return "".join(
        f'<tr class="blob{" waiting" if row.waiting else ""}" '
        f'data-decision="{e(row.decision.outcome.value)}">'
        f'<td><a href="{e(base)}blobs/{e(quote(row.blob.name, safe="/"))}"><code class="name">'
        f"{e(row.blob.name)}</code></a></td>"
        f"<td>{age_bar(row.age, found.window, found.margin)}</td>"
        f'<td class="days">{row.age.total_seconds() / 86400:.1f}&nbsp;d</td>'
        f"<td><b>{e(row.decision.outcome.value)}</b><div class=muted>{e(row.decision.reason)}</div></td>"
        f"<td>{' '.join(run_link(run_id, base) for run_id in row.runs[:5]) or '—'}</td></tr>"
        for row in rows
    )


def _blobs(blobs: Section[BlobsView], view: DashboardView, base: str) -> str:
    head = '<h2 id="blobs">Watched container</h2>'
    if blobs.value is None:
        return head + _failed(blobs)
    found = blobs.value
    days, hours = found.window.days, found.margin.total_seconds() / 3600
    trigger = "Enabled" if found.trigger_enabled else "Disabled"
    header = "<tr><th>blob</th><th>age against the window</th><th>age</th><th>decision</th><th>runs</th></tr>"
    waiting = ""
    if found.waiting:
        waiting = (
            f'<h3 class="bad">Waiting for a person ({len(found.waiting)})</h3>'
            f'<table class="waiting-blobs">{header}{_blob_rows(found.waiting, found, base)}</table>'
        )
    before = view.runs.value.before if view.runs.value else None
    pager = page_link("next page of blobs →", before, found.next_marker) if found.next_marker else ""
    first = page_link("first page", before, None) if found.marker else ""
    return (
        f"{head}<p>container <code>{e(found.container)}</code>; the source trigger ({e(trigger)}) imports "
        f"blobs last modified within {days} days; the app acts {hours:g} hours before (dashed line). "
        f"{found.manifests} manifests on this page not shown.</p>{waiting}"
        f'<table class="blobs">{header}{_blob_rows(found.page, found, base)}</table><p>{first} {pager}</p>'
    )


def _next(view: DashboardView) -> str:
    items = [f"<li>reconcile next: {e(when(view.next_reconcile))}</li>"]
    if view.next_sweep is not None:
        items.append(f"<li>sweep of the watched container next: {e(when(view.next_sweep))}</li>")
    plan = view.plan
    body = ""
    if plan is not None and plan.value is None:
        body = _failed(plan)
    elif plan is not None and plan.value is not None:
        body = _plan(plan.value)
    return f'<h2 id="next">What happens next</h2><ul>{"".join(items)}</ul>{body}'


def _plan(plan: Plan) -> str:
    problem = f'<p class="error">{e(plan.problem)}</p>' if plan.problem else ""
    if not plan.artifacts:
        what = "<p>no scheduled export: TRANSFER_EXPORT_ARTIFACTS is not set</p>"
    else:
        listed = "".join(f"<li><code>{e(item)}</code></li>" for item in plan.artifacts)
        mode = (
            "incremental (tags already exported at the same digest are left out)"
            if plan.incremental
            else "full"
        )
        what = (
            f'<p class="next-export">the export schedule <code>{e(plan.schedule)}</code> fires next at '
            f"<b>{e(when(plan.next_export))}</b>, {e(mode)}, with:</p><ul>{listed}</ul>"
        )
    rows = "".join(
        f"<tr><td><code>{e(entry.repository)}</code></td><td><code>{e(entry.reference)}</code></td>"
        f"<td><code>{e(entry.digest, 80)}</code></td><td>{e(entry.run_id)}</td></tr>"
        for entry in plan.exported
    )
    more = plan.exported_total - len(plan.exported)
    ledger = (
        f"<h3>Already exported ({plan.exported_total})</h3><table><tr><th>repository</th><th>tag</th>"
        f"<th>digest</th><th>run</th></tr>{rows}</table>" + (f"<p>and {more} more</p>" if more > 0 else "")
        if rows
        else "<p>nothing exported yet under these artifacts</p>"
    )
    return problem + what + ledger


def _runs(runs: Section[RunsPage], blobs: Section[BlobsView] | None, base: str) -> str:
    head = '<h2 id="runs">Runs</h2>'
    if runs.value is None:
        return head + _failed(runs)
    found = runs.value
    marker = blobs.value.marker if blobs is not None and blobs.value is not None else None
    rows = "".join(_run_row(run, base) for run in found.runs)
    pager = page_link("older runs →", found.next_before, marker) if found.next_before else ""
    newest = page_link("newest", None, marker) if found.before else ""
    return (
        f"{head}<table class=runs><tr><th>run</th><th>created</th><th>kind</th><th>trigger</th>"
        f"<th>status</th><th>what</th><th>verification</th><th>cause</th></tr>{rows}</table>"
        f"<p>{newest} {pager}</p>"
    )


def _run_row(run: Run, base: str) -> str:
    color = STATUS_COLORS.get(run.status.value, "#000")
    what = run.blob or ", ".join(run.artifacts[:3]) + (
        f" +{len(run.artifacts) - 3}" if len(run.artifacts) > 3 else ""
    )
    return (
        f'<tr class="run-row" data-status="{e(run.status.value)}"><td>{run_link(run.id, base)}</td>'
        f"<td>{e(when(run.created_at))}</td><td>{e(run.kind.value)}</td><td>{e(run.trigger.value)}</td>"
        f'<td style="color:{color}">{e(run.status.value)}</td><td>{e(what, 200)}</td>'
        f"<td>{e(run.verification.value if run.verification else '')}</td>"
        f"<td>{e(run.error_cause or '')}</td></tr>"
    )
