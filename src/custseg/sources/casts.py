"""The cast that parses text, per engine: Ibis' try_cast unless the engine gives its own.

engines/sql.py guards casts on PostgreSQL, MySQL and SQLite, where Ibis' try_cast fails the query
or turns text into 0. The value parsers (values.py, number_formats.py, date_formats.py) cast
through `try_cast` here; `casts_of(engine)` sets the engine's cast for a block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import ibis.expr.types as ir

_CAST: ContextVar[Callable[[ir.Value, str], ir.Value]] = ContextVar(
    "custseg_cast", default=lambda value, to: value.try_cast(to))
# A date from its year, month and day as digit texts, when the engine has a quicker way than
# casting 'Y-M-D' (None: cast the text).
# The engine itself, for the parsers' other engine-given steps (None: Ibis' try_cast throughout).
_ENGINE: ContextVar[object | None] = ContextVar("custseg_engine", default=None)
_DATE_FROM_PARTS: ContextVar[Callable[..., ir.DateValue] | None] = ContextVar("custseg_date_from_parts", default=None)


@contextlib.contextmanager
def casts_of(engine) -> Iterator[None]:
    """Within the block, the value parsers cast text the way `engine` does (Engine.try_cast)."""
    token = _CAST.set(engine.try_cast)
    parts = _DATE_FROM_PARTS.set(engine.date_from_parts)
    current = _ENGINE.set(engine)
    try:
        yield
    finally:
        _ENGINE.reset(current)
        _DATE_FROM_PARTS.reset(parts)
        _CAST.reset(token)


def try_cast(value: ir.Value, to: str) -> ir.Value:
    """`value` cast to `to`, NULL where it is not one, with the current engine's cast."""
    return _CAST.get()(value, to)


def date_from_parts() -> Callable[..., ir.DateValue] | None:
    """The current engine's date-from-parts builder, or None."""
    return _DATE_FROM_PARTS.get()


def cheap_try_cast() -> bool:
    """Whether the current engine's try_cast may be reused inside a larger expression (see Engine)."""
    engine = _ENGINE.get()
    return engine is None or engine.cheap_try_cast


def cast_number_text(value: ir.StringValue) -> ir.FloatingValue:
    """float64 of text shaped as a plain number by the parser, with the current engine's cast."""
    engine = _ENGINE.get()
    return value.try_cast("float64") if engine is None else engine.cast_number_text(value)
