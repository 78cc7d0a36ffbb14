"""Segment migration between two runs (two periods): who stayed, who moved, who came and who left.

Customers are matched by id (as text, exactly as written) and segments by name, so runs
made with different models can be compared. Every customer of either period is counted
exactly once in the migration table:

    from            <new segment names...>   (absent)
    <old segment>   stayed or moved          no longer in the new period
    (new customer)  only in the new period   0
"""

from __future__ import annotations

import csv
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import CustsegError
from ..features import natural_order_indices
from ..model import load_model
from .align import align_models
from .atomic import atomic_directory
from .run import neutralise, write_frame_csv
from .targets import check_target

NEW_CUSTOMER = "(new customer)"
ABSENT = "(absent)"
SEGMENT_FILES = ("segments.csv", "segments.parquet")


@dataclass
class RunSegments:
    """One run's customer -> segment name, and its segment names in segment order."""

    directory: Path
    assignment: pd.DataFrame   # customer_id (text), segment_name
    names: list[str]


@dataclass
class Comparison:
    migration: pd.DataFrame    # from, one column per new segment name, (absent)
    movers: pd.DataFrame       # customer_id, old_segment, new_segment
    old: RunSegments
    new: RunSegments
    # Two independent fits: how the new run's segments were aligned to the old one's (align.py), said
    # at the top of compare.html and on stderr; None when the new run used the old run's model.
    alignment_note: str | None = None

    @property
    def totals(self) -> dict[str, int]:
        table = self.migration.set_index("from")
        old_rows = [r for r in table.index if r != NEW_CUSTOMER]
        new_columns = [c for c in table.columns if c != ABSENT]
        return {
            "customers": int(table.to_numpy().sum()),
            "old_period": len(self.old.assignment),
            "new_period": len(self.new.assignment),
            "in_both": int(table.loc[old_rows, new_columns].to_numpy().sum()),
            "stayed": sum(int(table.loc[n, n]) for n in old_rows if n in new_columns),
            "moved": len(self.movers),
            "new": int(table.loc[NEW_CUSTOMER].sum()),
            "absent": int(table[ABSENT].sum()),
        }


def read_run(directory: str | os.PathLike) -> RunSegments:
    """A run directory's segments (segments.csv or segments.parquet) with names from its model.json."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CustsegError(f"{directory}: no such run directory; give a directory written by 'custseg run'.")
    present = [directory / f for f in SEGMENT_FILES if (directory / f).is_file()]
    if not present:
        raise CustsegError(f"{directory}: has no segments.csv or segments.parquet; give a directory written by "
                           "'custseg run'.")
    path = present[0]
    table = _read_segments(path)
    for column in ("customer_id", "segment_name"):
        if column not in table.column_names:
            raise CustsegError(f"{path}: has no column {column!r}; give the segments written by 'custseg run'.")
    frame = pd.DataFrame({
        "customer_id": table.column("customer_id").cast(pa.string()).to_pylist(),
        "segment_name": table.column("segment_name").cast(pa.string()).to_pylist(),
        "segment": table.column("segment").to_pylist() if "segment" in table.column_names else None,
    })
    if frame["customer_id"].isna().any():
        row = int(frame["customer_id"].isna().to_numpy().argmax()) + 2
        raise CustsegError(f"{path}: row {row} has no customer_id; give the segments written by 'custseg run'.")
    duplicated = frame["customer_id"].duplicated()
    if duplicated.any():
        first = frame.loc[duplicated, "customer_id"].iloc[0]
        raise CustsegError(f"{path}: customer {first!r} is listed twice; a run lists each customer once.")
    names = _names(directory, frame, path)
    assignment = pd.DataFrame({"customer_id": frame["customer_id"].astype(object),
                               "segment_name": frame["segment_name"].astype(object)})
    if (directory / "model.json").is_file() and "segment" in table.column_names:
        # Names from the model by segment id: exact even when a CSV cell was neutralised (a leading ').
        assignment["segment_name"] = [names[int(i)] for i in frame["segment"]]
    for reserved in (NEW_CUSTOMER, ABSENT):
        if reserved in names:
            raise CustsegError(f"{directory}: a segment is named {reserved!r}, which compare reserves; rename it.")
    return RunSegments(directory=directory, assignment=assignment, names=names)


def _read_segments(path: Path) -> pa.Table:
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        # Every column as text first: customer ids such as "00123" must stay as written.
        header = _csv_header(path)
        types = {name: pa.string() for name in header if name != "segment"}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={**types, "segment": pa.int64()} if "segment" in header else types,
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as exc:
        raise CustsegError(f"{path}: cannot be read as a custseg segments table "
                           f"({' '.join(str(exc).split())[:200]}).") from exc


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def _names(directory: Path, frame: pd.DataFrame, path: Path) -> list[str]:
    """Segment names in segment order: the model's (empty segments too), else those in the table."""
    if (directory / "model.json").is_file():
        names = load_model(directory / "model.json").segment_names
        if frame["segment"] is not None:
            ids = pd.to_numeric(frame["segment"], errors="coerce")
            if ids.isna().any() or (ids < 0).any() or (ids >= len(names)).any():
                raise CustsegError(f"{path}: its segment ids do not match {directory / 'model.json'} "
                                   f"({len(names)} segments); the directory mixes two runs.")
        return names
    if frame["segment"] is not None:
        ordered = frame.drop_duplicates("segment").sort_values("segment")
        return list(dict.fromkeys(ordered["segment_name"]))
    return list(dict.fromkeys(frame["segment_name"]))


def compare_runs(old_dir: str | os.PathLike, new_dir: str | os.PathLike) -> Comparison:
    """Migration table and movers between two runs."""
    old, new = read_run(old_dir), read_run(new_dir)
    note = None
    own_names = dict(zip(new.names, new.names))
    if (old.directory / "model.json").is_file() and (new.directory / "model.json").is_file():
        alignment = align_models(load_model(old.directory / "model.json"), load_model(new.directory / "model.json"),
                                 f"the first run ({old.directory})", f"the second run ({new.directory})")
        if not alignment.same_model:
            note = alignment.note(old.names, new.names)
            new, own_names = _aligned(new, old.names, alignment)
    both = old.assignment.merge(new.assignment, on="customer_id", how="outer", suffixes=("_old", "_new"),
                                sort=False)
    start = both["segment_name_old"].astype(object).where(both["segment_name_old"].notna(), NEW_CUSTOMER)
    end = both["segment_name_new"].astype(object).where(both["segment_name_new"].notna(), ABSENT)
    rows = old.names + [n for n in dict.fromkeys(old.assignment["segment_name"]) if n not in old.names]
    columns = new.names + [n for n in dict.fromkeys(new.assignment["segment_name"]) if n not in new.names]
    counts = pd.crosstab(pd.Series(list(start), name="from"), pd.Series(list(end), name="to"))
    counts = counts.reindex(index=rows + [NEW_CUSTOMER], columns=columns + [ABSENT], fill_value=0)
    migration = counts.fillna(0).astype("int64").reset_index()
    migration.columns = ["from"] + list(counts.columns)
    moved = both[both["segment_name_old"].notna() & both["segment_name_new"].notna()
                 & (both["segment_name_old"] != both["segment_name_new"])]
    movers = pd.DataFrame({"customer_id": moved["customer_id"].astype(object),
                           "old_segment": moved["segment_name_old"].astype(object),
                           "new_segment": moved["segment_name_new"].map(own_names).astype(object)})
    # natural order, as in segments.csv: by length, then by text (numeric ids in numeric order)
    order = natural_order_indices(pa.array(movers["customer_id"], pa.string())).to_numpy()
    movers = movers.iloc[order].reset_index(drop=True)
    return Comparison(migration=migration, movers=movers, old=old, new=new, alignment_note=note)


def _aligned(new: RunSegments, old_names: list[str], alignment) -> tuple[RunSegments, dict[str, str]]:
    """The new run's segments labelled by the old segment each is aligned to (unmatched ones keep their
    own name, marked "(new)" if an old segment has it), and label -> the new run's own name."""
    labels = []
    for b, name in enumerate(new.names):
        a = alignment.a_of(b)
        labels.append(old_names[a] if a is not None else (f"{name} (new)" if name in old_names else name))
    relabel = dict(zip(new.names, labels))
    assignment = new.assignment.assign(segment_name=new.assignment["segment_name"].map(relabel))
    return RunSegments(directory=new.directory, assignment=assignment, names=labels), dict(zip(labels, new.names))


def write_comparison(comparison: Comparison, path: str | os.PathLike, force: bool = False) -> Path:
    """migration.csv, movers.csv and compare.html into `path`, atomically (complete or absent)."""
    target = check_target(path, force)
    error = lambda exc: CustsegError(f"{target}: cannot write the comparison ({exc.strerror or exc}); "  # noqa: E731
                                     "free space or choose another --out.")
    with atomic_directory(target, error) as tmp:
        write_migration_csv(tmp / "migration.csv", comparison.migration)
        write_frame_csv(tmp / "movers.csv", comparison.movers, ("old_segment", "new_segment"))
        (tmp / "compare.html").write_text(compare_html(comparison), encoding="utf-8")
    return target


def write_migration_csv(path: Path, migration: pd.DataFrame) -> None:
    """The migration table; segment names (row labels and header) are neutralised against formulas."""
    frame = migration.copy()
    frame["from"] = frame["from"].map(neutralise)
    frame.columns = ["from"] + [neutralise(c) for c in frame.columns[1:]]
    frame.to_csv(path, index=False, lineterminator="\n")


# ---------------------------------------------------------------------------- compare.html

def sankey_figure(comparison: Comparison):
    """A plotly Sankey: old segments (and new customers) on the left, new segments (and absent) on the
    right, in segment order; each flow in its old segment's colour (the report's palette, by segment
    id); hover gives each flow's share of its row; the title gives both runs' periods."""
    import plotly.graph_objects as go  # plotly: heavy

    from .report.figures import segment_colors  # beside plotly, only for a comparison

    migration = comparison.migration
    left = list(migration["from"])
    right = list(migration.columns[1:])
    grey = "#9aa5b1"

    def colours(names: list[str], run: RunSegments) -> list[str]:
        palette = segment_colors(max(1, len(run.names)))
        return [palette[run.names.index(n)] if n in run.names else grey for n in names]

    node_colours = colours(left, comparison.old) + colours(right, comparison.new)
    # plotly draws labels as its own small HTML subset: &, < and > escaped show as typed.
    labels = [html.escape(n, quote=False) for n in left + right]
    rows = migration.iloc[:, 1:].to_numpy(dtype="int64")
    row_totals, column_totals, total = rows.sum(axis=1), rows.sum(axis=0), max(1, int(rows.sum()))
    sources, targets, values, link_colours, shares = [], [], [], [], []
    for i in range(len(left)):
        for j in range(len(right)):
            if rows[i, j]:
                sources.append(i)
                targets.append(len(left) + j)
                values.append(int(rows[i, j]))
                link_colours.append(_rgba(node_colours[i], 0.35))
                shares.append(f"{rows[i, j] / row_totals[i]:.1%}")
    # Nodes in segment order top to bottom ((new customer) and (absent) last), each column stacked by size.
    sizes = list(row_totals) + list(column_totals)
    xs, ys = [0.001] * len(left) + [0.999] * len(right), []
    for start, count in ((0, len(left)), (len(left), len(right))):
        column = sizes[start:start + count]
        gap = 0.04 if count > 1 else 0.0
        room = 1.0 - gap * max(0, count - 1)
        offset = 0.0
        for size in column:
            height = room * size / max(1, sum(column))
            ys.append(min(0.999, max(0.001, offset + height / 2)))
            offset += height + gap
    node_text = [f"{sizes[n]:,} customers ({sizes[n] / total:.1%} of all)" for n in range(len(sizes))]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=labels, color=node_colours, pad=18, thickness=18, x=xs, y=ys, customdata=node_text,
                  hovertemplate="%{label}: %{customdata}<extra></extra>"),
        link=dict(source=sources, target=targets, value=values, color=link_colours, customdata=shares,
                  hovertemplate="%{source.label} → %{target.label}: %{value:,} customers "
                                "(%{customdata} of %{source.label})<extra></extra>"),
    ))
    old_period, new_period = _period_of(comparison.old.directory), _period_of(comparison.new.directory)
    title = (f"Old period{' (' + old_period + ')' if old_period else ''} → "
             f"new period{' (' + new_period + ')' if new_period else ''}")
    fig.update_layout(height=max(420, 48 * max(len(left), len(right))), margin=dict(l=20, r=20, t=50, b=20),
                      title_text=html.escape(title, quote=False), font=dict(size=13))
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _period_of(directory: Path) -> str | None:
    """'2018-11-01 to 2019-04-30': the orders' dates of a run (its summary.json), when known."""
    try:
        dates = json.loads((Path(directory) / "summary.json").read_text(encoding="utf-8")).get("date_range")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(dates, list) or len(dates) < 2 or not dates[0] or not dates[1]:
        return None
    return f"{dates[0]} to {dates[1]}"


def compare_html(comparison: Comparison) -> str:
    """A self-contained page (plotly.js inlined; under the report's CSP: no network, only its own
    scripts, by hash), rendered from templates/compare.html.j2."""
    import plotly.io as pio  # plotly: heavy
    from markupsafe import Markup  # (jinja2's)
    from plotly.offline import get_plotlyjs  # plotly: heavy

    from .report.page import content_security_policy, environment, script_json  # (plotly: heavy)

    figure = script_json(pio.to_json(sankey_figure(comparison), validate=True))
    config = script_json(json.dumps({"displaylogo": False, "responsive": True,
                                     "modeBarButtonsToRemove": ["sendDataToCloud"]}))
    plotly_js = get_plotlyjs()
    sankey_js = f"(function(){{var f={figure};Plotly.newPlot('sankey',f.data,f.layout,{config});}})();"
    migration = comparison.migration
    return environment().get_template("compare.html.j2").render(
        csp=Markup(content_security_policy([plotly_js, sankey_js])), t=comparison.totals,  # (no quote or <)
        old_dir=str(comparison.old.directory), new_dir=str(comparison.new.directory),
        columns=[str(c) for c in migration.columns],
        rows=[[str(row[0]), *[int(v) for v in row[1:]]] for row in migration.itertuples(index=False)],
        alignment_note=comparison.alignment_note,
        plotly_js=Markup(plotly_js), sankey_js=Markup(sankey_js),
    )
