"""The report frame every task's evaluation page shares: one static HTML file with PNG figures beside it.

A task's report module computes its sections (tables, plots, samples) and hands them to
`write_page`; style, page layout and the figure factory are defined once here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MODEL_COLOR, BASELINE_COLOR = "#1f5fa8", "#d0761c"

CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
    "table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:5px 8px;text-align:left;"
    "vertical-align:top;font-size:14px}th{background:#f3f3f3}.pass{color:#176f2c;font-weight:bold}"
    ".fail{color:#b00020;font-weight:bold}img{max-width:100%;border:1px solid #eee;margin:4px}"
    ".grid{display:flex;flex-wrap:wrap;gap:8px}.note{color:#555;font-size:13px}td.text{font-size:12px;max-width:640px}"
    "pre{white-space:pre-wrap;font-size:12px;background:#f8f8f8;padding:6px;margin:0}"
)


def figure(width: float = 6.0, height: float = 4.5):
    """A matplotlib Figure drawn off-screen (no display, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """An HTML table; cells are escaped text unless they are already marked up (start with '<')."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text if text.startswith("<") else html.escape(text)

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def blessing_section(blessing: Mapping[str, Any] | None) -> str:
    if blessing is None:
        return ""
    status = "<span class='pass'>BLESSED</span>" if blessing["blessed"] else "<span class='fail'>NOT BLESSED</span>"
    return f"<h2>Blessing: {status}</h2><p>{html.escape(blessing['reason'])}</p>"


def page(title: str, sections: Iterable[tuple[str, str]], subtitle: Mapping[str, Any] | None = None) -> str:
    """A whole page: title, an optional line of facts, then (heading, HTML body) sections ("" heading: none)."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style>"]
    parts.append(f"</head><body><h1>{esc(title)}</h1>")
    if subtitle:
        facts = ", ".join(f"{k} <code>{esc(str(v))}</code>" for k, v in subtitle.items() if v is not None)
        parts.append(f"<p class='note'>{facts}</p>")
    for heading, body in sections:
        if heading:
            parts.append(f"<h2>{esc(heading)}</h2>")
        parts.append(body)
    parts.append("</body></html>")
    return "".join(parts)


def write_page(path: Path, title: str, sections: Iterable[tuple[str, str]], subtitle=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(title, sections, subtitle), encoding="utf-8")
    return path
