"""--audiences: one CSV per segment under `audiences/`, for upload to an email or ad tool (issue 17).

Each file holds the segment's customer_id (exactly as read) and the --keep columns, one row per
customer, in the order of the segments table. File names are `<segment number>-<slug of its
name>.csv` (e.g. `2-lapsed-big-spenders.csv`): the number makes them unique and sorts them, the slug
is lower-case ASCII letters, digits and single hyphens only, so a name such as "../x", "a/b", "CON"
or one in another script can neither leave the directory nor clash. Every segment gets a file, an
empty segment a file with the header only.

Text in the --keep columns that a spreadsheet would run as a formula (starting with = + - @ tab
or CR) gets a leading apostrophe, as in the other CSV outputs, since these files are also opened in
Excel; the customer id never does.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import CustsegError

AUDIENCES_DIR = "audiences"
MAX_SLUG = 60
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def slug(name: str) -> str:
    """Lower-case ASCII letters and digits joined by single hyphens, at most MAX_SLUG characters;
    "segment" when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    text = text[:MAX_SLUG].rstrip("-")
    return text or "segment"


def audience_file_name(segment: int, name: str) -> str:
    return f"{int(segment)}-{slug(name)}.csv"


def _names_by_segment(names: Sequence[str] | Mapping[int, str]) -> dict[int, str]:
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items()}
    return {i: str(n) for i, n in enumerate(names)}


def neutralised_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    typ = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return column
    if pa.types.is_dictionary(column.type):
        column = column.cast(typ)
    risky = pc.starts_with(column, FORMULA_STARTS[0])
    for start in FORMULA_STARTS[1:]:
        risky = pc.or_(risky, pc.starts_with(column, start))
    return pc.if_else(pc.fill_null(risky, False), pc.binary_join_element_wise("'", column, ""), column)


def write_audiences(directory: str | os.PathLike, segments: pa.Table, names: Sequence[str] | Mapping[int, str],
                    keep_columns: Sequence[str] = ()) -> list[str]:
    """Write `directory/audiences/<n>-<slug>.csv` for every segment in `names`; returns the paths
    written, relative to `directory`.

    `segments`: the segments table (customer_id, segment and the kept columns); `names`: segment
    names by segment number (a list, index = number, or a mapping). The files are written into a
    temporary directory renamed into place, so `audiences/` is whole or absent."""
    names_of = _names_by_segment(names)
    keep_columns = list(dict.fromkeys(keep_columns))
    missing = [c for c in ["customer_id", "segment", *keep_columns] if c not in segments.column_names]
    if missing:
        raise CustsegError(f"the segments table has no column(s) {', '.join(missing)} for the audiences "
                           f"(it has {', '.join(segments.column_names)}).")
    if "customer_id" in keep_columns:
        keep_columns.remove("customer_id")
    labels = segments.column("segment").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    unknown = sorted(set(np.unique(labels).tolist()) - set(names_of))
    if unknown:
        raise CustsegError(f"segment(s) {', '.join(map(str, unknown))} in the segments table have no name.")

    ids = segments.column("customer_id")
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        ids = ids.cast(pa.string())
    table = pa.table({"customer_id": ids, **{c: neutralised_column(segments.column(c)) for c in keep_columns}})
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=max(names_of) + 1))]) \
        if len(labels) else np.zeros(max(names_of) + 2, dtype=np.int64)
    grouped = table.take(pa.array(order))

    directory = Path(directory)
    target = directory / AUDIENCES_DIR
    tmp = directory / f".{AUDIENCES_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    written = []
    try:
        tmp.mkdir(parents=True)
        for segment in sorted(names_of):
            file_name = audience_file_name(segment, names_of[segment])
            start, stop = (int(bounds[segment]), int(bounds[segment + 1])) if segment + 1 < len(bounds) else (0, 0)
            part = grouped.slice(start, stop - start)
            pacsv.write_csv(part, str(tmp / file_name),
                            write_options=pacsv.WriteOptions(quoting_style="needed"))
            written.append(f"{AUDIENCES_DIR}/{file_name}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written
