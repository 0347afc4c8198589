"""Small HTML pieces for the report: escaped text, numbers, tables, figures and the page's
style sheet. Every value that reaches the page goes through ``text`` (``html.escape``)."""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any, Iterable, Sequence


class Raw:
    """HTML that is already safe (built here from escaped parts)."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def text(value: Any) -> str:
    """``value`` as escaped HTML text; missing values (None, NaN) as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return html.escape(number(value))
    return html.escape(str(value))


def number(value: float, digits: int = 6) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}g}"


def seconds(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(value):
        return "–"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.3g} s"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          row_classes: Sequence[str] | None = None, numeric: Sequence[int] = ()) -> str:
    """A ``<table>``; ``numeric`` are the indices of right-aligned columns."""
    head = "".join(f'<th{_align(i, numeric)}>{text(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = row_classes[r] if row_classes and row_classes[r] else ""
        cells = "".join(f"<td{_align(i, numeric)}>{_cell(v)}</td>" for i, v in enumerate(row))
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    rows = "".join(f"<tr><th>{text(k)}</th><td>{_cell(v)}</td></tr>" for k, v in items)
    return f'<div class="scroll"><table class="pairs"><tbody>{rows}</tbody></table></div>'


def figure(png: bytes, alt: str, caption: str) -> str:
    """An ``<img>`` holding ``png`` as a data URI, with its alt text (plain text) and
    caption (markup)."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def folded(summary: str, body: str, open_: bool) -> str:
    """``body`` under a ``<details>`` that the reader can fold (no script needed);
    ``summary`` and ``body`` are markup."""
    return (f'<details{" open" if open_ else ""}><summary>{summary}</summary>'
            f"{body}</details>")


def _cell(value: Any) -> str:
    """A table cell's content: markup built here as is, lists and dicts as JSON code,
    anything else as text."""
    if isinstance(value, Raw):
        return value.html
    if isinstance(value, (dict, list)):
        return f"<code>{html.escape(json.dumps(value, default=str))}</code>"
    return text(value)


def _align(i: int, numeric: Sequence[int]) -> str:
    return ' class="num"' if i in numeric else ""


CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #e3e6ec; --soft: #f5f7fa;
        --accent: #2f5d9e; --good: #1f7a3f; --bad: #a8322d; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
             Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 64px; }
header h1 { font-size: 1.6rem; margin: 0 0 4px; }
header p { margin: 0; color: var(--muted); overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: 2px 16px; margin: 16px 0 8px; padding: 8px 0;
      border-top: 1px solid var(--line); border-bottom: 1px solid var(--line);
      font-size: 0.9rem; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
h2 { font-size: 1.2rem; margin: 36px 0 8px; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
section > p { color: var(--muted); margin: 4px 0 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr));
         gap: 10px; margin-top: 16px; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 8px;
        padding: 10px 14px; }
.card .label { font-size: 0.75rem; text-transform: uppercase; letter-spacing: 0.04em;
               color: var(--muted); }
.card .value { font-size: 1.25rem; font-weight: 600; overflow-wrap: anywhere; }
.card .detail { font-size: 0.85rem; color: var(--muted); overflow-wrap: anywhere; }
.good { color: var(--good); } .bad { color: var(--bad); }
.note { background: #fff8e5; border-left: 4px solid #e0b000; padding: 8px 12px;
        margin: 12px 0; }
figure { margin: 8px 0 16px; }
figure img { display: block; width: 100%; max-width: 900px; height: auto;
             border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 6px; max-width: 900px; }
.scroll { overflow-x: auto; margin: 8px 0 12px; }
table { border-collapse: collapse; font-size: 0.85rem; width: 100%; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.muted td { color: var(--muted); }
tr.summary-row { font-weight: 600; background: #eef3fb !important; }
#leaderboard td:nth-last-child(-n+2) { min-width: 14rem; }
table.pairs { width: auto; min-width: 50%; }
table.pairs th { color: var(--muted); font-weight: 500; white-space: nowrap; }
code { font: 0.8rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       overflow-wrap: anywhere; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
footer { margin-top: 48px; color: var(--muted); font-size: 0.85rem; }
"""
