"""The dashboard's small pieces of markup: escaping (every text through `e`, secrets scrubbed first), the
inline SVG charts, a blob's age bar against the source trigger's window, durations and the countdown
script. No external resource: the page works in an isolated network."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

STATUS_COLORS = {
    "Succeeded": "#2e7d32",
    "Failed": "#c62828",
    "Running": "#1565c0",
    "Deploying": "#6a8cbf",
    "Accepted": "#9e9e9e",
    "Canceled": "#5d4037",
}
VERIFICATION_COLORS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "unavailable": "#9e9e9e",
    "pending": "#1565c0",
}
# A SAS signature, an account or access key, a connection string's secret part: never on the page, even
# where a service's error message quotes one.
_SECRET = re.compile(
    r"(?i)\b(sig|AccountKey|SharedAccessKey|SharedAccessSignature|client_secret|code)=([^&\s;\"'<>]+)"
)
MAX_TEXT = 600

# Ticks every countdown (data-expires) once a second; its hash is the page's only allowed script (CSP).
# Ticks every countdown (data-expires) once a second from the server's clock (the body's data-now), so a
# browser whose clock is off still counts right; its hash is the page's only allowed script (CSP).
COUNTDOWN_SCRIPT = (
    "(function(){var start=Date.now(),now=Date.parse(document.body.getAttribute('data-now'));"
    "function f(ms){if(ms<=0)return 'expired';var s=Math.floor(ms/1000),d=Math.floor(s/86400),"
    "h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60);return 'in '+d+' d '+h+' h '+m+' min '+(s%60)+' s';}"
    "function t(){var n=now+Date.now()-start;"
    "document.querySelectorAll('[data-expires]').forEach(function(el){el.textContent=f(Date.parse(el.getAttribute('data-expires'))-n);});}t();setInterval(t,1000);})();"
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(COUNTDOWN_SCRIPT.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; script-src 'sha256-{SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def scrub(text: str) -> str:
    return _SECRET.sub(lambda m: f"{m.group(1)}=***", text)


def e(value: object, limit: int = MAX_TEXT) -> str:
    """Text for HTML (element or quoted attribute), secrets scrubbed, cut at `limit` characters."""
    text = scrub("" if value is None else str(value))
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    return html.escape(text, quote=True)


def q(value: str) -> str:
    """A query parameter's value inside a URL, escaped for an attribute too."""
    return html.escape(quote(value, safe=""), quote=True)


def when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def span(delta: timedelta) -> str:
    """`41 d 3 h`, `5 h 12 min`, `expired`: how long, for people."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def countdown(expires: datetime, now: datetime) -> str:
    """The time left, written now and kept ticking by COUNTDOWN_SCRIPT."""
    left = span(expires - now)
    text = left if left == "expired" else f"in {left}"
    return f'<span class="countdown" data-expires="{e(iso(expires))}">{e(text)}</span>'


def stacked_bars(buckets: list[tuple[datetime, Counter[str]]], label: str, step: str) -> str:
    """Runs per bucket stacked by status, oldest left; each bar's title lists its counts."""
    width, height, gap = 320, 70, 1
    top = max((sum(counts.values()) for _, counts in buckets), default=0) or 1
    slot = width / max(len(buckets), 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{e(label)}" viewBox="0 0 {width} {height + 16}" '
        f'width="{width}" height="{height + 16}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>',
    ]
    for index, (start, counts) in enumerate(buckets):
        y = float(height)
        for status, color in STATUS_COLORS.items():
            count = counts.get(status, 0)
            if not count:
                continue
            bar = height * count / top
            y -= bar
            title = f"{start:%Y-%m-%d %H:%M} UTC + {step}: {count} {status}"
            parts.append(
                f'<rect x="{index * slot + gap / 2:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" '
                f'height="{bar:.1f}" fill="{color}" data-status="{e(status)}">'
                f"<title>{e(title)}</title></rect>"
            )
    parts.append(f'<text x="0" y="{height + 13}" font-size="11">{e(label)} (max {top} per {step})</text>')
    parts.append("</svg>")
    return "".join(parts)


def age_bar(age: timedelta, window: timedelta, margin: timedelta) -> str:
    """A blob's age on a scale of 1.25 windows: the margin (where the app acts) and the window (where the
    source trigger stops looking) marked; the bar's colour says which side of them it is."""
    width, height = 260, 16
    scale = window * 1.25
    act_at = window - margin
    bar = width * min(max(age / scale, 0.0), 1.0)
    margin_x = width * (act_at / scale)
    window_x = width * (window / scale)
    state = "past-window" if age >= window else "past-margin" if age >= act_at else "within"
    color = {"past-window": "#c62828", "past-margin": "#ef6c00", "within": "#2e7d32"}[state]
    title = (
        f"{age.total_seconds() / 86400:.1f} days old; the app acts from {act_at.total_seconds() / 86400:.1f} "
        f"days (window {window.days} days minus the margin), the source trigger ignores it from {window.days}"
    )
    return (
        f'<svg class="age" data-state="{state}" role="img" aria-label="{e(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="2" width="{width}" height="{height - 4}" fill="#eee"/>'
        f'<rect class="bar" x="0" y="2" width="{bar:.1f}" height="{height - 4}" fill="{color}"/>'
        f'<line class="margin" x1="{margin_x:.1f}" y1="0" x2="{margin_x:.1f}" y2="{height}" '
        'stroke="#ef6c00" stroke-width="2" stroke-dasharray="3,2"/>'
        f'<line class="window" x1="{window_x:.1f}" y1="0" x2="{window_x:.1f}" y2="{height}" '
        'stroke="#000" stroke-width="2"/>'
        f"<title>{e(title)}</title></svg>"
    )


def legend(colors: dict[str, str]) -> str:
    return " ".join(
        f'<span class="key"><span class="swatch" style="background:{color}"></span>{e(name)}</span>'
        for name, color in colors.items()
    )
