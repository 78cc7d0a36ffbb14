"""Column names as the schemas know them, whatever their case and surrounding spaces.

An export whose headers read `Customer_ID`, ` Day `, `Total_Sales` is a Shopify export; read
as they are, they would not be recognised and the generic schema (other features, other rules)
would be used. A column whose name equals a known schema column ignoring case and surrounding
spaces is renamed to the known spelling (unless that spelling is already a column).
"""

from __future__ import annotations


def _key(name: str) -> str:
    return " ".join(str(name).split()).lower()


def find_column(columns: list[str], name: str) -> str | None:
    """The column called `name`, or else the one column equal to it ignoring case and spaces."""
    if name in columns:
        return name
    matches = [c for c in columns if _key(c) == _key(name)]
    return matches[0] if len(matches) == 1 else None


def respelled(columns: list[str], names: tuple[str, ...]) -> list[str]:
    """The columns with the known `names` respelled where they match ignoring case and spaces."""
    known = {}
    for name in names:
        known.setdefault(_key(name), name)
    present = set(columns)
    out = []
    for column in columns:
        target = known.get(_key(column))
        if target is not None and target != column and target not in present and target not in out:
            out.append(target)
        else:
            out.append(column)
    return out
