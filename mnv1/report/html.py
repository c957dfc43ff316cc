"""One self-contained HTML page: tables inline, figures embedded as base64 PNG, no external file."""

from __future__ import annotations

import base64
import re
from html import escape

from mnv1.report.document import Block, FigureBlock, Heading, Paragraph, TableBlock
from mnv1.report.tables import Table

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
ul.notes { font-size: 12px; color: #555; margin-top: 0.2em; }
figure { margin: 1em 0; }
figcaption { font-size: 13px; color: #555; }
.FAIL { color: #b00; font-weight: bold; background: #fdecea; }
tr.failed td { color: #b00; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = []
    for row in table.formatted():
        cells = []
        for column, text in zip(table.columns, row, strict=True):
            failed = text == "FAIL" or text.startswith("FAIL:")  # a check, or a count of them
            classes = " ".join(
                c for c in ("num" if column.numeric else "", "FAIL" if failed else "") if c
            )
            attr = f' class="{classes}"' if classes else ""
            cells.append(f"<td{attr}>{escape(text)}</td>")
        # A row holding a failed check is red throughout, not only its verdict cell.
        row_class = ' class="failed"' if "FAIL" in row else ""
        body.append(f"<tr{row_class}>" + "".join(cells) + "</tr>")
    html = (
        f'<table id="{escape(table.key)}"><caption>{escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    if table.notes:
        html += '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in table.notes)
        html += "</ul>"
    return html


def to_html(title: str, blocks: list[Block]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            parts.append(f"<h{level}>{escape(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            # Paragraphs are written for Markdown: show its `code` spans as code here too.
            text = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(block.text))
            text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
            parts.append(f"<p>{text}</p>")
        elif isinstance(block, TableBlock):
            parts.append(_table(block.table))
        elif isinstance(block, FigureBlock):
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(
                f'<figure><img alt="{escape(block.caption)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{escape(block.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
