"""The one markdown-table builder behind every benchmark table (no JAX here, like `stats`)."""

from collections.abc import Iterable, Sequence


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table: `columns` names each column, ending in `:` for one aligned right
    (`"median s:"`); each row holds one cell a column, written with `str`."""
    header = [c.removesuffix(":") for c in columns]
    rule = ["---:" if c.endswith(":") else "---" for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    for row in rows:
        cells = [str(cell) for cell in row]
        if len(cells) != len(columns):
            raise ValueError(f"a row of {len(cells)} cells in a table of {len(columns)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
