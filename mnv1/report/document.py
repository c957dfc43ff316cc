"""The report as a list of blocks, so Markdown and HTML render the same content."""

from __future__ import annotations

from dataclasses import dataclass

from mnv1.report.tables import Table


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class TableBlock:
    table: Table


@dataclass(frozen=True)
class FigureBlock:
    filename: str
    """The PNG beside the Markdown file (``figure4.png``)."""
    png: bytes
    caption: str


Block = Heading | Paragraph | TableBlock | FigureBlock


def to_markdown(blocks: list[Block]) -> str:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}\n")
        elif isinstance(block, Paragraph):
            parts.append(f"{block.text}\n")
        elif isinstance(block, TableBlock):
            t = block.table
            text = f"**{t.title}**\n\n{t.to_markdown()}"
            if t.notes:
                text += "\n" + "\n".join(f"- {n}" for n in t.notes) + "\n"
            parts.append(text)
        else:
            parts.append(f"![{block.caption}]({block.filename})\n\n*{block.caption}*\n")
    return "\n".join(parts)
