"""The cast that parses text, per engine: Ibis' try_cast unless the engine gives its own.

engines/sql.py guards casts on PostgreSQL, MySQL and SQLite, where Ibis' try_cast fails the query
or turns text into 0. The value parsers (values.py, number_formats.py, date_formats.py) cast
through the functions here; `casts_of(engine)` makes `engine` the one they ask, for a block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import ibis.expr.types as ir

# The engine whose casts the parsers use (None: Ibis' try_cast throughout).
_ENGINE: ContextVar[object | None] = ContextVar("custseg_engine", default=None)


@contextlib.contextmanager
def casts_of(engine) -> Iterator[None]:
    """Within the block, the value parsers cast text the way `engine` does (Engine.try_cast)."""
    token = _ENGINE.set(engine)
    try:
        yield
    finally:
        _ENGINE.reset(token)


def try_cast(value: ir.Value, to: str) -> ir.Value:
    """`value` cast to `to`, NULL where it is not one, with the current engine's cast."""
    engine = _ENGINE.get()
    return value.try_cast(to) if engine is None else engine.try_cast(value, to)


def date_from_parts() -> Callable[..., ir.DateValue] | None:
    """The current engine's date-from-parts builder (quicker than casting 'Y-M-D'), or None."""
    engine = _ENGINE.get()
    return None if engine is None else engine.date_from_parts


def fixed_date(text: ir.StringValue, order: str) -> ir.DateValue | None:
    """The current engine's quick reading of a fixed-width date (Engine.fixed_date), or None."""
    engine = _ENGINE.get()
    return None if engine is None else engine.fixed_date(text, order)


def cheap_try_cast() -> bool:
    """Whether the current engine's try_cast may be reused inside a larger expression (see Engine)."""
    engine = _ENGINE.get()
    return engine is None or engine.cheap_try_cast


def cast_number_text(value: ir.StringValue) -> ir.FloatingValue:
    """float64 of text shaped as a plain number by the parser, with the current engine's cast."""
    engine = _ENGINE.get()
    return value.try_cast("float64") if engine is None else engine.cast_number_text(value)
