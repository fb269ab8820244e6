"""Plain-text and Markdown tables: one formatter for the CLI, the README and the docs."""

from __future__ import annotations

from collections.abc import Sequence


def _cells(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    return [["" if v is None else (f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
             for v in row] for row in rows]


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).replace("%", "").lstrip("-").isdigit()


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns aligned for a terminal; numbers right-aligned."""
    body = _cells(rows)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in body])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    body = _cells(rows)
    align = ["---:" if body and all(_is_number(r[i]) for r in body) else "---" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)
