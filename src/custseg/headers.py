"""Column names as the schemas know them, whatever their case and surrounding spaces.

An export whose headers read `Customer_ID`, ` Day `, `Total_Sales` is a Shopify export; read
as they are, they would not be recognised and the generic schema (other features, other rules)
would be used. A column whose name equals a known schema column ignoring case and surrounding
spaces is renamed to the known spelling (unless that spelling is already a column).
"""

from __future__ import annotations


def _key(name: str) -> str:
    return " ".join(str(name).split()).lower()


def known_names() -> tuple[str, ...]:
    from .sources import ONLINE_RETAIL_ALIASES, SHOPIFY_COLUMNS

    names = set(SHOPIFY_COLUMNS) | {"gross_sales"}
    for aliases in ONLINE_RETAIL_ALIASES.values():
        names.update(aliases)
    return tuple(sorted(names))


def normalised_headers(columns: list[str]) -> list[str]:
    """The columns with known names respelled (Customer_ID -> customer_id, ' Day ' -> day), when
    that makes a schema recognisable (else the columns as they are: --map names them)."""
    from .sources import detect_schema

    respelled = _respelled(columns)
    if respelled != columns and detect_schema(respelled) != "generic" and detect_schema(columns) == "generic":
        return respelled
    return columns


def find_column(columns: list[str], name: str) -> str | None:
    """The column called `name`, or else the one column equal to it ignoring case and spaces."""
    if name in columns:
        return name
    matches = [c for c in columns if _key(c) == _key(name)]
    return matches[0] if len(matches) == 1 else None


def _respelled(columns: list[str]) -> list[str]:
    known = {}
    for name in known_names():
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
