"""`sdw-report DIR...`: run directories -> runs.csv -> tables, plots, steps to score (Hydra app).

Bare paths on the command line become a `dirs=[...]` override before Hydra parses it, so
`sdw-report A B out=X` and `sdw-report dirs=[A,B] out=X` are the same command. Overrides are
checked and errors reported as in every sdw app (sdw/hydra_app.py).
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sdw.atomic import atomic_write
from sdw.config import config_dir
from sdw.errors import UserError
from sdw.hydra_app import launch, task
from sdw.report import aggregates, plots, protocols, speed, tables
from sdw.report.collect import Run, check_columns, collect_runs, label, status_counts, write_runs_csv
from sdw.report.curves import CURVE_STATUSES, grouped_curves
from sdw.report.results import write_results

log = logging.getLogger("sdw.report")

OUTPUTS = ("runs.csv", "table.md", "table.csv", "table.tex", "report.md", "score_vs_step.png",
           "score_vs_time.png", "ess.png", "steps_to_score.md", "steps_to_score.csv",
           "speed_vs_step.png", "speed_vs_time.png", "aggregates.md", "performance_profiles.png",
           *(f"{kind}_table.{ext}" for kind in ("ensemble", "cross")
             for ext in ("md", "csv", "tex")))


def run(cfg: DictConfig) -> Path:
    """Read the runs, write runs.csv, the tables, the plots and report.md; return the out dir."""
    _check(cfg)
    dirs = [cfg.dirs] if isinstance(cfg.dirs, str) else list(cfg.dirs or [])
    runs = collect_runs(dirs)
    out = Path(cfg.out) if cfg.out else Path(dirs[0]) / "report"
    # Job directories under `out` itself (never the case for sdw-run output) are not reread.
    runs = [r for r in runs if out.resolve() not in Path(r["run_dir"]).resolve().parents]
    for name in OUTPUTS:  # no stale figure or table of an earlier report stays beside this one
        (out / name).unlink(missing_ok=True)
    write_runs_csv(runs, out / "runs.csv")
    where = OmegaConf.to_container(cfg.where) if cfg.where else {}
    selected = select(runs, where)
    log.info("%d jobs in %s (%s); %d selected by where=%s", len(runs), ", ".join(dirs),
             status_counts(runs), len(selected), where)

    spec = tables.TableSpec(**OmegaConf.to_container(cfg.table))
    table = tables.build_table(selected, spec)
    for note in table.notes:
        log.warning("table: %s", note)
    table_md = tables.to_markdown(table)
    _write_text(out / "table.md", table_md)
    _write_csv(out / "table.csv", tables.to_csv_rows(table))
    _write_text(out / "table.tex", tables.to_latex(table))
    sections = [f"# Report: {', '.join(dirs)}", "",
                f"{len(runs)} jobs ({status_counts(runs)}); one row each in runs.csv.", "",
                f"## Table: {spec.value} by {spec.rows} and {spec.cols}", "", table_md]
    for found in protocols.protocol_tables(selected, spec):
        text = protocols.to_markdown(found)
        _write_text(out / f"{found.kind}_table.md", text)
        _write_csv(out / f"{found.kind}_table.csv", tables.to_csv_rows(found.table))
        _write_text(out / f"{found.kind}_table.tex", tables.to_latex(found.table))
        sections += [f"## {found.title}", "", text]
        print(f"\n{found.title}\n\n{text}")

    if cfg.plots.enabled:
        sections += _plots(selected, cfg, out, reference_lines(table))
    sections += _pictures(selected, cfg.table.rows, out)
    if cfg.aggregate.enabled:
        sections += _aggregate(selected, cfg, out)
    if cfg.speed.enabled:
        sections += _speed(selected, cfg, out)
    _write_text(out / "report.md", "\n".join(sections))
    print(table_md)
    log.info("report written to %s", out)
    return out


def select(runs: Sequence[Run], where: dict) -> list[Run]:
    """The runs whose columns equal every value of `where` (compared as text)."""
    check_columns(runs, {f"where.{k}": k for k in where})
    selected = [r for r in runs if all(label(r[k]) == label(v) for k, v in where.items())]
    if not selected:
        present = "; ".join(f"{k}: {', '.join(sorted({label(r[k]) for r in runs}))}"
                            for k in where)
        raise UserError(f"where={where} selects none of the {len(runs)} jobs; their values are "
                        f"{present}")
    return selected


def reference_lines(table: tables.Table) -> dict[str, dict[str, float]]:
    """column -> reference label -> its mean: the lines drawn across each score panel."""
    lines: dict[str, dict[str, float]] = {}
    for ref, cells in table.references.items():
        for col, cell in cells.items():
            lines.setdefault(col, {})[tables.REFERENCE_LABELS[ref]] = cell.mean
    return lines


def _plots(runs: Sequence[Run], cfg: DictConfig, out: Path,
           references: dict[str, dict[str, float]]) -> list[str]:
    t, p = cfg.table, cfg.plots
    curves = grouped_curves(runs, t.rows, t.cols, CURVE_STATUSES[p.curves_from])
    drawn = [plots.plot_curves(curves, out / "score_vs_step.png", x="step", band=p.band,
                               legend_title=t.rows, references=references),
             plots.plot_curves(curves, out / "score_vs_time.png", x="elapsed", band=p.band,
                               legend_title=t.rows, references=references),
             plots.plot_ess(runs, t.rows, t.cols, out / "ess.png")]
    lines = ["## Plots", ""]
    lines += [f"![{path.stem}]({path.name})" for path in drawn if path is not None]
    if not curves:
        lines.append(f"No score curves: no {p.curves_from} run has an evaluation with a "
                     f"normalised score in metrics.jsonl.")
    weight_plots = [r["weights_png"] for r in runs if r["weights_png"]]
    if weight_plots:
        lines += ["", "Each run's weight histogram:", ""]
        lines += [f"- [{Path(w).parent.name}](<{os.path.relpath(w, out)}>)" for w in weight_plots]
    return lines + [""]


def _pictures(runs: Sequence[Run], rows: str, out: Path) -> list[str]:
    """Each run's pose grid and rollout as links; the first run of each row value's shown."""
    drawn = [r for r in runs if r["poses_png"] or r["rollout_gif"]]
    if not drawn:
        return []
    lines = ["## Pictures", "",
             "The synthetic states as the robot's poses (x set to 0) and a rollout of a student "
             "trained on the set (left) beside the teacher (right), the first run of each "
             f"{rows} shown:", ""]
    shown: set[str] = set()
    for run in drawn:
        name = label(run[rows])
        if name not in shown:
            shown.add(name)
            lines += [f"**{name}**, {label(run['dataset'])}, seed {label(run['seed'])}:", ""]
            lines += [f"![{kind}](<{os.path.relpath(run[column], out)}>)"
                      for kind, column in (("poses", "poses_png"), ("rollout", "rollout_gif"))
                      if run[column]]
            lines.append("")
    lines += ["Every run's pictures:", ""]
    for run in drawn:
        links = ", ".join(f"[{kind}](<{os.path.relpath(run[column], out)}>)"
                          for kind, column in (("poses", "poses_png"), ("rollout", "rollout_gif"))
                          if run[column])
        lines.append(f"- {label(run[rows])} / {label(run['dataset'])} / seed "
                     f"{label(run['seed'])}: {links}")
    return lines + [""]


def _aggregate(runs: Sequence[Run], cfg: DictConfig, out: Path) -> list[str]:
    t, a = cfg.table, cfg.aggregate
    matrices, datasets, notes = aggregates.score_matrices(runs, t.rows, t.cols, t.value)
    if not matrices:
        return ["## Aggregates across datasets", "", "No method has a seed on every dataset.", ""]
    estimates = aggregates.interval_estimates(matrices, a.reps, a.seed)
    improvements = aggregates.improvement(matrices, a.improvement, a.reps, a.seed)
    text = aggregates.to_markdown(estimates, improvements, datasets,
                                  {m: len(v) for m, v in matrices.items()}, notes, a.reps)
    _write_text(out / "aggregates.md", text)
    figure = aggregates.plot_profiles(matrices, out / "performance_profiles.png", a.reps, a.seed,
                                      estimates)
    return ["## Aggregates across datasets", "", text, f"![performance profiles]({figure.name})",
            ""]


def _speed(runs: Sequence[Run], cfg: DictConfig, out: Path) -> list[str]:
    s, p = cfg.speed, cfg.plots
    check_columns(runs, {"speed.group_by": s.group_by, "speed.per": s.per})
    curves = grouped_curves(runs, s.group_by, s.per, CURVE_STATUSES[p.curves_from])
    results = speed.steps_to_score(curves, s.reference, s.reference_step)
    text = speed.to_markdown(results, group_by=s.group_by, panel=s.per, reference=s.reference,
                             reference_step=s.reference_step, decimals=cfg.table.decimals)
    _write_text(out / "steps_to_score.md", text)
    fields = list(speed.StepsToScore.__dataclass_fields__)
    _write_csv(out / "steps_to_score.csv",
               [fields] + [[getattr(r, f) for f in fields] for r in results])
    targets = {r.panel: r.target for r in results if r.target is not None}
    figures = [plots.plot_curves(curves, out / f"speed_vs_{x}.png", x=key, band=p.band,
                                 legend_title=s.group_by, targets=targets)
               for x, key in (("step", "step"), ("time", "elapsed"))]
    return [text, *(f"![{f.stem}]({f.name})" for f in figures if f is not None), ""]


def _check(cfg: DictConfig) -> None:
    if cfg.plots.band not in plots.BANDS:
        raise UserError(f"plots.band={cfg.plots.band!r}: use one of {', '.join(plots.BANDS)}")
    if cfg.plots.curves_from not in CURVE_STATUSES:
        raise UserError(f"plots.curves_from={cfg.plots.curves_from!r}: use one of "
                        f"{', '.join(CURVE_STATUSES)}")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), mode="w")


def _write_csv(path: Path, rows: list[list]) -> None:
    atomic_write(path, lambda f: csv.writer(f, lineterminator="\n").writerows(
        [["" if v is None else v for v in row] for row in rows]), mode="w")


@hydra.main(version_base=None, config_path=str(config_dir()), config_name="report")
@task
def _hydra_main(cfg: DictConfig) -> None:
    run(cfg)


@hydra.main(version_base=None, config_path=str(config_dir()), config_name="results")
@task
def _results_main(cfg: DictConfig) -> None:
    log.info("results written to %s", write_results(cfg))


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; `argv` (without the program name) for tests.

    `--config-name results` (or `-cn results`) rebuilds the study page instead of one report.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if _config_name(args) == "results":
        launch("results", _results_main, args)
    else:
        launch("report", _hydra_main, args, positional="dirs")


def _config_name(args: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg in ("-cn", "--config-name") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config-name="):
            return arg.split("=", 1)[1]
    return None


if __name__ == "__main__":
    main()
