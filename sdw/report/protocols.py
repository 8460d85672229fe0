"""OBD's Table 2 and Table 3 layouts: each evaluation protocol of a run as a row of its own.

Table 3 (ensembles): per method, `<method>: one student` (the final standard evaluation) beside
`<method>: ensemble of N` (`score_ensemble`). Table 2 (cross-architecture / cross-optimiser):
per method, `<method>: as distilled` (the final standard evaluation), then one row per student
architecture (`score_arch_<name>`) and inner optimiser (`score_optim_<name>`). Both are ordinary
tables (sdw/report/tables.py) over derived runs, one per (run, protocol row), so their cells,
references, failed jobs and notes follow the same rules as the main table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sdw.report import papers, tables
from sdw.report.collect import Run, label

VALUE = "final score"
"""The derived runs' value column: each protocol's final normalised score."""
STANDARD = "score_final"
ENSEMBLE = "score_ensemble"
CROSS_PREFIXES = ("score_arch_", "score_optim_")


@dataclass
class ProtocolTable:
    """One table in a paper's layout, where the paper's numbers come from, and what is beside."""

    kind: str  # "ensemble" or "cross"
    title: str
    table: tables.Table
    paper: list[str]  # Markdown lines: the paper's numbers beside ours, or why there are none


def protocol_tables(runs: Sequence[Run], spec: tables.TableSpec) -> list[ProtocolTable]:
    """The Table 3 and Table 2 layouts of whatever protocols the runs were evaluated with."""
    found = []
    ensemble = _protocol_runs(runs, lambda c: c == ENSEMBLE)
    if ensemble:
        found.append(_ensemble_table(ensemble, spec))
    cross = _protocol_runs(runs, lambda c: c.startswith(CROSS_PREFIXES))
    if cross:
        found.append(_cross_table(cross, spec))
    return found


def _protocol_runs(runs: Sequence[Run], is_column) -> list[Run]:
    """The runs of the sweep directories in which some run has a column `is_column` accepts
    (their failed jobs included, so the table lists them)."""
    roots = {r.root for r in runs if any(is_column(c) for c in r.row)}
    return [r for r in runs if r.root in roots]


def _columns(runs: Sequence[Run], is_column) -> list[str]:
    return list(dict.fromkeys(c for r in runs for c in r.row if is_column(c)))


def row_column(spec: tables.TableSpec) -> str:
    """The derived runs' row column: `method: evaluation`."""
    return f"{spec.rows}: evaluation"


def derive(runs: Sequence[Run], entries: Sequence[tuple[str, str]],
           spec: tables.TableSpec) -> list[Run]:
    """One run per (run, entry): row `<run's spec.rows value>: <entry name>`, value the entry's
    column."""
    derived = []
    for run in runs:
        for name, column in entries:
            row = {**run.row, row_column(spec): f"{label(run[spec.rows])}: {name}",
                   VALUE: run[column]}
            derived.append(replace(run, row=row))
    return derived


def _row_order(runs: Sequence[Run], entries: Sequence[tuple[str, str]],
               spec: tables.TableSpec) -> list[str]:
    """Methods in the main table's order, each with its protocol rows in `entries` order."""
    methods = tables.ordered({label(r[spec.rows]) for r in runs}, spec.row_order)
    return [f"{m}: {name}" for m in methods for name, _ in entries]


def _derived_table(runs: Sequence[Run], entries: Sequence[tuple[str, str]],
                   spec: tables.TableSpec) -> tables.Table:
    derived = derive(runs, entries, spec)
    return tables.build_table(derived, replace(spec, rows=row_column(spec), value=VALUE,
                                               row_order=_row_order(runs, entries, spec)))


def _ensemble_table(runs: Sequence[Run], spec: tables.TableSpec) -> ProtocolTable:
    members = sorted({int(r["ensemble_members"]) for r in runs if r["ensemble_members"]})
    size = "/".join(map(str, members)) or "N"
    entries = [("one student", STANDARD), (f"ensemble of {size}", ENSEMBLE)]
    table = _derived_table(runs, entries, spec)
    return ProtocolTable("ensemble", f"OBD Table 3 layout: one student against an ensemble of "
                         f"{size} students acting on their mean action", table,
                         _beside_table3(runs, table, spec, entries[1][0]))


def _cross_table(runs: Sequence[Run], spec: tables.TableSpec) -> ProtocolTable:
    columns = _columns(runs, lambda c: c.startswith(CROSS_PREFIXES))
    arch = [c for c in columns if c.startswith(CROSS_PREFIXES[0])]
    optim = [c for c in columns if c.startswith(CROSS_PREFIXES[1])]
    entries = [("as distilled", STANDARD)]
    entries += [(c.removeprefix(CROSS_PREFIXES[0]), c) for c in arch]
    entries += [(f"{c.removeprefix(CROSS_PREFIXES[1])} optimiser", c) for c in optim]
    table = _derived_table(runs, entries, spec)
    note = ["OBD Table 2's numbers are not in this project's reference notes "
            "(`shared/reference/algorithm.md` lists its architectures and optimisers only), so no "
            "paper row stands beside this table. The official script's Adam and AdamW rows really "
            "ran SGD (its `optimier` typo); here each row ran the optimiser it names."]
    return ProtocolTable("cross", "OBD Table 2 layout: the synthetic sets on other student "
                         "architectures and inner optimisers", table, note)


def _beside_table3(runs: Sequence[Run], table: tables.Table, spec: tables.TableSpec,
                   ensemble_name: str) -> list[str]:
    """OBD Table 3 (Av-PBC, ensemble of 10) beside our Av-PBC ensembles, both in D4RL units."""
    row = f"Av-PBC: {ensemble_name}"
    if row not in table.rows or spec.cols != "dataset":
        return ["OBD Table 3 reports Av-PBC by dataset; with no Av-PBC ensemble by dataset here "
                "no paper row stands beside this table."]
    maps = {label(r["dataset"]): r.return_map for r in runs if r.return_map is not None}
    cols = [c for c in table.cols if papers.env_level(c) is not None]
    if not cols:
        return ["None of the columns is a D4RL locomotion dataset; OBD Table 3 has no match."]
    cells = table.row_cells(row)
    ours = [papers.to_d4rl(cells[c].mean if c in cells else None, c, maps.get(c)) for c in cols]
    paper = [papers.OBD_TABLE3_AVPBC_ENSEMBLE[papers.env_level(c)] for c in cols]
    d = spec.decimals
    return ["Beside the paper, in D4RL units (our mean converted to its raw return with the "
            "dataset's own reference returns read off the runs' evaluations, then normalised "
            "with D4RL's; the paper: OBD Table 3, Av-PBC, an ensemble of 10 students, its GPU "
            "configuration):", "",
            "| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols),
            f"| {row} (ours) | " + " | ".join(tables.format_number(v, d) for v in ours) + " |",
            "| OBD Table 3: Av-PBC, ensemble of 10 | "
            + " | ".join(tables.format_number(v, d) for v in paper) + " |"]


def to_markdown(found: ProtocolTable) -> str:
    """The table, its omissions and notes, then the paper beside it."""
    return "\n".join([tables.to_markdown(found.table), *found.paper, ""])
