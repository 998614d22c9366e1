"""Tables that stay readable in any terminal: one line per row, key columns never cut, the rest as room allows.

Rich shrinks every column of a table wider than the console, so at 80 columns a cell name, a figure or a verdict
becomes `mlp.ten...` or `669,...`. Here each column says how much it matters: key columns (priority 0) keep
their full width, optional ones (1, 2, ...) are left out, least important first, until the table fits, and one
flexible column (notes) takes what is left and ends in an ellipsis; whatever it cuts is stated below the table.
Every value is plain text, never rich markup: `jax[cuda13]` and an error holding `[/` print as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

FLEX_MIN = 12  # the notes column gets at least this much room, or is left out


@dataclass(frozen=True)
class Column:
    name: str
    justify: str = "left"
    priority: int = 0  # 0: always shown, whole; higher numbers are dropped first when the width is short
    flex: bool = False  # takes the remaining width, cut with an ellipsis


def _width(column: Column, values: list[str]) -> int:
    return max([len(column.name), *(len(v) for v in values)])


def fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, title: str | None = None,
        styles: Sequence[str | None] | None = None) -> Table:
    """A table of at most `width` characters (key columns permitting), one line per row."""
    widths = [_width(c, [row[i] for row in rows]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))

    def total(indexes: list[int]) -> int:  # each column: its text and two spaces (no edges, no dividers)
        return sum((FLEX_MIN if columns[i].flex else widths[i]) + 2 for i in indexes) - 2

    for priority in sorted({c.priority for c in columns if c.priority > 0}, reverse=True):
        for i in [i for i in keep if columns[i].priority == priority][::-1]:
            if total(keep) <= width:
                break
            keep.remove(i)
    flex = [i for i in keep if columns[i].flex]
    if flex and total(keep) > width:
        keep = [i for i in keep if not columns[i].flex]
    table = Table(title=title, title_justify="left", box=None, padding=(0, 1), pad_edge=False,
                  header_style="bold underline")
    for i in keep:
        column = columns[i]
        room = width - total([k for k in keep if k != i]) - 4 if column.flex else widths[i]
        table.add_column(column.name, justify=column.justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         min_width=min(widths[i], room), max_width=max(room, 1))
    for n, row in enumerate(rows):
        table.add_row(*(Text(row[i]) for i in keep), style=(styles[n] if styles else None))
    return table


class Footnotes:
    """Long texts (an error, a skip reason) stated once below a table; rows refer to them as `[n]`."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}

    def ref(self, text: str, who: str) -> str:
        self.texts.setdefault(text, []).append(who)
        return f"[{list(self.texts).index(text) + 1}]"

    def lines(self) -> list[str]:
        out = []
        for n, (text, who) in enumerate(self.texts.items(), 1):
            cells = f" ({len(who)} cells)" if len(who) > 1 else ""
            out.append(f"[{n}]{cells} {text}")
        return out
