"""Stage 2 of the report: the papers' table (rows x columns, mean +- std (n) over seeds) and the
list of every job that does not contribute a number to it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from sdw.errors import UserError
from sdw.report.collect import REFERENCES, Run, check_columns, label

REFERENCE_LABELS = {"random_subset": "Random subset", "whole_data_bc": "BC (whole data)",
                    "teacher": "Teacher"}
REFERENCE_UNITS = {"random_subset": ("student", "students"),
                   "whole_data_bc": ("student", "students"), "teacher": ("policy", "episodes")}
"""What a reference's values are, (one value, several): the random subset and whole-data BC
train students; the teacher is one policy, recorded as its mean or as its evaluation episodes."""
MISSING = "—"


@dataclass
class TableSpec:
    """What goes where: the runs.csv columns of rows, columns and the value averaged over seeds."""

    rows: str = "method"
    cols: str = "dataset"
    value: str = "score"
    row_order: Sequence[str] = ()
    col_order: Sequence[str] = ()
    decimals: int = 1
    std_ddof: int = 0
    references: bool = True
    average: bool = True
    interval: float | None = None


@dataclass
class Cell:
    """The values of one cell: a method's seed scores, or a reference's student scores."""

    values: list[float] = field(default_factory=list)
    ddof: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        if self.n <= self.ddof:
            return 0.0 if self.values else None
        return float(np.std(self.values, ddof=self.ddof))

    def interval(self, level: float) -> tuple[float, float] | None:
        """Student's t interval of the mean at `level` (std with ddof 1); None under 2 values."""
        if self.n < 2:
            return None
        half = (stats.t.ppf((1 + level) / 2, self.n - 1) * np.std(self.values, ddof=1)
                / np.sqrt(self.n))
        return self.mean - half, self.mean + half


@dataclass
class Omission:
    """A job (or an expected job) that gives the table no number, and why."""

    row: str
    col: str
    seed: Any
    status: str
    run_dir: str | None
    error: str | None


@dataclass
class Table:
    spec: TableSpec
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], Cell]
    references: dict[str, dict[str, Cell]]  # reference name -> column -> cell (over students)
    ess: dict[tuple[str, str], list[float]]  # (row, column) -> ESS fractions of its counted runs
    omissions: list[Omission]
    notes: list[str]

    def average(self, cells: dict[str, Cell]) -> float | None:
        """Mean over the columns of the cell means; None unless every column has one."""
        means = [cells[c].mean if c in cells else None for c in self.cols]
        return None if any(m is None for m in means) else float(np.mean(means))

    def row_cells(self, row: str) -> dict[str, Cell]:
        return {c: self.cells[(row, c)] for c in self.cols if (row, c) in self.cells}

    def row_ess(self, row: str) -> list[float]:
        """ESS fractions of every counted run of the row, over all its columns."""
        return [e for c in self.cols for e in self.ess.get((row, c), [])]


def build_table(runs: Sequence[Run], spec: TableSpec) -> Table:
    """Group the runs into cells, references and omissions (failed, running, missing seeds)."""
    check_columns(runs, {"table.rows": spec.rows, "table.cols": spec.cols,
                         "table.value": spec.value})
    by_cell: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        by_cell[(label(run[spec.rows]), label(run[spec.cols]))].append(run)
    rows = ordered({r for r, _ in by_cell}, spec.row_order)
    cols = ordered({c for _, c in by_cell}, spec.col_order)

    cells: dict[tuple[str, str], Cell] = {}
    ess: dict[tuple[str, str], list[float]] = {}
    omissions: list[Omission] = []
    notes: list[str] = []
    for key in sorted(by_cell, key=lambda k: (rows.index(k[0]), cols.index(k[1]))):
        members = by_cell[key]
        counted = [r for r in members if r["status"] == "done" and r[spec.value] is not None]
        if counted:
            cells[key] = Cell([_value(r, spec.value) for r in counted], spec.std_ddof)
        fractions = [float(r["ess_fraction"]) for r in counted if r["ess_fraction"] is not None]
        if fractions:
            ess[key] = fractions
        for run in members:
            if not any(run is c for c in counted):
                status = run["status"] if run["status"] != "done" else f"done, no {spec.value}"
                omissions.append(Omission(*key, run["seed"], status, run["run_dir"],
                                          run["error"]))
        present = {r["seed"] for r in members}
        for seed in sorted(_expected_seeds(members, runs) - present, key=str):
            omissions.append(Omission(*key, seed, "no job directory", None,
                                      "seed run by other cells of the sweep"))
        notes.extend(_pooling_notes(key, counted))
        seeds = [r["seed"] for r in counted]
        duplicated = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
        if duplicated:
            notes.append(f"{key[0]} / {key[1]}: seed(s) {', '.join(map(str, duplicated))} "
                         f"counted more than once (runs in different directories)")
    omissions.extend(_empty_cells(runs, spec, rows, cols, by_cell))

    references: dict[str, dict[str, Cell]] = {}
    if spec.references:
        for ref in REFERENCES:
            per_col = {c: reference_cell(runs, spec, c, ref) for c in cols}
            per_col = {c: cell for c, cell in per_col.items() if cell.n}
            if per_col:
                references[ref] = per_col
    return Table(spec, rows, cols, cells, references, ess, omissions, notes)


def _value(run: Run, column: str) -> float:
    try:
        return float(run[column])
    except (TypeError, ValueError):
        raise UserError(f"table.value={column}: {run[column]!r} of {run['run_dir']} is not a "
                        f"number; average a numeric runs.csv column (score, score_final, ...)"
                        ) from None


def ordered(values: set[str], order: Sequence[str]) -> list[str]:
    """`order`'s values first, then the rest: numbers by value (16 before 128), then text."""
    first = [str(v) for v in order if str(v) in values]
    return first + sorted(values - set(first), key=_natural)


def _natural(value: str) -> tuple:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _expected_seeds(members: list[Run], runs: Sequence[Run]) -> set:
    """The seeds of every job of the sweep directories this cell's jobs were found under."""
    roots = {r.root for r in members}
    return {r["seed"] for r in runs if r.root in roots}


def _empty_cells(runs, spec, rows, cols, by_cell) -> list[Omission]:
    """Grid cells with no job at all whose row and column both occur in one sweep directory."""
    omissions = []
    for root in dict.fromkeys(r.root for r in runs):
        in_root = [r for r in runs if r.root == root]
        root_rows = {label(r[spec.rows]) for r in in_root}
        root_cols = {label(r[spec.cols]) for r in in_root}
        for row in rows:
            for col in cols:
                if row in root_rows and col in root_cols and (row, col) not in by_cell:
                    omissions.append(Omission(row, col, None, "no job directory", str(root),
                                              "no job of this row and column in the sweep"))
    return omissions


def _pooling_notes(key: tuple[str, str], counted: list[Run]) -> list[str]:
    """A note when one cell averages runs of different evaluation protocols (an edited eval
    config is in no override), or whose overrides differ in more than the seed."""
    notes = []
    protocols = sorted({str(r["eval_protocol"]) for r in counted})
    if len(protocols) > 1:
        notes.append(f"{key[0]} / {key[1]} pools runs of different evaluation protocols "
                     f"({' | '.join(protocols)}): their scores are not comparable; select with "
                     "`where=eval_protocol=...`")
    configs = [_overrides_without_seed(r["overrides"]) for r in counted]
    differing = sorted({k for c in configs for k in c
                        if len({cfg.get(k) for cfg in configs}) > 1})
    if differing:
        values = "; ".join(f"{k}: {', '.join(sorted({str(c.get(k)) for c in configs}))}"
                           for k in differing)
        notes.append(f"{key[0]} / {key[1]} pools runs whose overrides differ beyond the seed "
                     f"({values}); select with `where=` or make it a row or column")
    return notes


def _overrides_without_seed(overrides: str | None) -> dict[str, str]:
    pairs = (o.split("=", 1) for o in (overrides or "").split() if "=" in o)
    return {k: v for k, v in pairs if k.lstrip("+~") != "seed"}


def reference_cell(runs: Sequence[Run], spec: TableSpec, col: str, ref: str) -> Cell:
    """A reference of one column over its students: every distinct result counted once (the
    seeds share one when it is cached per dataset), as its per-student scores, or its value
    when the job has none."""
    results: dict[tuple[float, ...], None] = {}
    for run in runs:
        value = run[f"ref_{ref}"]
        if label(run[spec.cols]) == col and run["status"] == "done" and value is not None:
            results[tuple(run.references.get(ref) or [float(value)])] = None
    return Cell([v for result in results for v in result], spec.std_ddof)


def format_cell(cell: Cell | None, decimals: int, unit: tuple[str, str] | None = None,
                interval: float | None = None) -> str:
    """`41.0 ± 0.8 (3)`; with a unit `11.8 ± 5.1 (5 students)`, or `49.0 (1 policy)`; with an
    `interval` level its t interval after the std: `41.0 ± 0.8 [39.0, 43.0] (3)`."""
    if cell is None or not cell.n:
        return MISSING
    count = f"({cell.n})" if unit is None else f"({cell.n} {unit[0] if cell.n == 1 else unit[1]})"
    if cell.n == 1 and unit is not None:
        return f"{cell.mean:.{decimals}f} {count}"
    text = f"{cell.mean:.{decimals}f} ± {cell.std:.{decimals}f}"
    bounds = cell.interval(interval) if interval else None
    if bounds is not None:
        text += f" [{bounds[0]:.{decimals}f}, {bounds[1]:.{decimals}f}]"
    return f"{text} {count}"


def format_number(value: float | None, decimals: int) -> str:
    return MISSING if value is None else f"{value:.{decimals}f}"


def format_ess(values: list[float]) -> str:
    if not values:
        return ""
    return f"{np.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def text_grid(table: Table) -> tuple[list[str], list[list[str]], int]:
    """Header, body rows (methods, then references) as text, and where the references start."""
    spec, d = table.spec, table.spec.decimals
    show_ess = bool(table.ess)
    header = [spec.rows, *table.cols] + (["Average"] if spec.average else []) + (
        ["ESS/N"] if show_ess else [])
    body = []
    for name, cells, unit in [(r, table.row_cells(r), None) for r in table.rows] + [
            (REFERENCE_LABELS[ref], cells, REFERENCE_UNITS[ref])
            for ref, cells in table.references.items()]:
        line = [name, *(format_cell(cells.get(c), d, unit, spec.interval) for c in table.cols)]
        if spec.average:
            line.append(format_number(table.average(cells), d))
        if show_ess:
            line.append(format_ess(table.row_ess(name)) if name in table.rows else "")
        body.append(line)
    return header, body, len(table.rows)


def to_markdown(table: Table) -> str:
    """The table, its legend, and every omitted job with its directory and error."""
    header, body, n_rows = text_grid(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, line in enumerate(body):
        cells = [f"*{line[0]}*" if i >= n_rows else line[0], *line[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    spec = table.spec
    interval = (f", [{spec.interval:.0%} t interval of the mean]" if spec.interval else "")
    lines += ["", f"Cells: {spec.value} as mean ± std{interval} (number of seeds) over seeds "
              f"(std with ddof={spec.std_ddof}); Average: mean of the row's cell means when every "
              f"column has one; references (computed once per dataset and shared by its seeds): "
              f"mean ± std over their students (the random subset: one student per random subset; "
              f"the teacher: one policy's evaluation episodes)."]
    if table.ess:
        lines.append("ESS/N: effective sample size fraction of the SDW state weights, mean "
                     "(min–max) over the row's runs.")
    return "\n".join(lines + ["", omissions_markdown(table)])


def omissions_markdown(table: Table) -> str:
    """Every job that gives the table no number, with its directory and error, and the notes."""
    spec = table.spec
    lines = [f"### Failed and missing jobs ({len(table.omissions)})", ""]
    if table.omissions:
        lines += [f"| {spec.rows} | {spec.cols} | seed | status | run dir | error |",
                  "|---|---|---|---|---|---|"]
        for o in table.omissions:
            error = (o.error or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {o.row} | {o.col} | {label(o.seed)} | {o.status} | "
                         f"{o.run_dir or MISSING} | {error} |")
    else:
        lines.append("None: every job is done and every cell has every seed.")
    if table.notes:
        lines += ["", "### Notes", "", *(f"- {note}" for note in table.notes)]
    return "\n".join(lines) + "\n"


def to_csv_rows(table: Table) -> list[list[Any]]:
    """The table in the same layout with numbers: mean, std and n per column."""
    show_ess = bool(table.ess)
    level = table.spec.interval
    statistics = ("mean", "std", "n") + (("ci_low", "ci_high") if level else ())
    header = [table.spec.rows] + [f"{c} {stat}" for c in table.cols for stat in statistics]
    header += (["average"] if table.spec.average else []) + (["ess_fraction"] if show_ess else [])
    out = [header]
    named = [(r, table.row_cells(r)) for r in table.rows] + [
        (REFERENCE_LABELS[ref], cells) for ref, cells in table.references.items()]
    for name, cells in named:
        line: list[Any] = [name]
        for c in table.cols:
            cell = cells.get(c)
            line += [cell.mean, cell.std, cell.n] if cell else [None, None, 0]
            if level:
                line += list((cell.interval(level) if cell else None) or (None, None))
        if table.spec.average:
            line.append(table.average(cells))
        if show_ess:
            values = table.row_ess(name) if name in table.rows else []
            line.append(float(np.mean(values)) if values else None)
        out.append(line)
    return out


def to_latex(table: Table) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); references below a rule."""
    header, body, n_rows = text_grid(table)
    lines = [f"% sdw-report: {_latex(table.spec.value)} as mean $\\pm$ std (seeds); "
             f"needs \\usepackage{{booktabs}}",
             "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}", "\\toprule",
             " & ".join(_latex(h) for h in header) + " \\\\", "\\midrule"]
    for i, line in enumerate(body):
        if i == n_rows:
            lines.append("\\midrule")
        lines.append(" & ".join(_latex(x).replace("±", "$\\pm$").replace("–", "--")
                                .replace(MISSING, "--") for x in line) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#",
                  "_": "\\_", "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}",
                  "^": "\\textasciicircum{}"}


def _latex(text: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
