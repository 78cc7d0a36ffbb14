"""The cleaned lines cached by the engine, the files read again where the first reading cannot be trusted.

A reading is done again when the lines end in different ways beyond the sniffed 64 KB (the engine's
lenient mode), when a file is not UTF-8 beyond them (its encoding fixed), when a line is longer than
the engine's default limit (the limit raised), or when a value needs the careful text parser
(sources/csv_dialect.py).
"""

from __future__ import annotations

from collections.abc import Callable

from ..sources.csv_dialect import typed_reading_failed
from ..sources.encodings import fix_misdecoded
from ..sources.read import read_source
from .rules import cache_lines, clean, discard_cache


def cache_reading(engine, spec, source, cleaned, note: Callable[[str], None]):
    """(source, cleaned) with the cleaned lines cached, after any reading done again; `note` tells the user why."""
    try:
        cleaned = cache_lines(engine, cleaned, source)
    except Exception as exc:  # line endings that change beyond the sniffed 64 KB (text_files.py)
        if "state machine reached an invalid state" not in str(exc) or not engine.read_leniently():
            raise
        note("the lines end in different ways (LF and CRLF); reading the files again")
        engine.drop_all_rejects()
        source = read_source(engine, spec)
        cleaned = cache_lines(engine, clean(source), source)
    misdecoded = engine.rejected_files("INVALID ENCODING")  # not UTF-8 beyond the sniffed 64 KB
    # a line beyond the engine's default limit: read again with a larger one
    long = engine.rejected_files("LINE SIZE OVER MAXIMUM")
    if long and not engine.raise_line_limit():  # already raised: such a line stays malformed
        long = []
    if misdecoded or long or (source.typed_rejects and typed_reading_failed(engine, source, cleaned.cached)):
        # A value the typed reader could not parse: read everything as text (csv_dialect.py).
        for message in fix_misdecoded(misdecoded) if misdecoded else \
                [f"{long[0]}: a line longer than 2 MB; reading again" if long else
                 "a value needs the careful text parser; reading the file again"]:
            note(message)
        discard_cache(engine, cleaned)
        engine.forget_rejects(source.typed_rejects)
        if misdecoded or long:
            engine.drop_all_rejects()
        source = read_source(engine, spec)
        cleaned = cache_lines(engine, clean(source), source)
    return source, cleaned
