"""`sdw-report --config-name results`: the reproduction study's sweeps -> docs/results.md.

Every number of the page comes from a job directory of the configured sweeps (or, for claim d,
from sdw-analyze's committed table); the papers' numbers are labelled as theirs. A sweep or job
that is missing is listed, never filled in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sdw.atomic import atomic_write
from sdw.errors import UserError
from sdw.report import aggregates, papers, pilot, tables, verdicts
from sdw.report.claims import (HIGHER, LOWER, MIN_VALUES, MISSING, TIE, TOO_FEW, Difference,
                               Sample, Welch, difference)
from sdw.report.collect import Run, collect_runs, label, status_counts
from sdw.report.papers import env_level

METHODS = ("DBC", "PBC", "Av-PBC", "SDW-kde", "SDW-knn", "SDW-flow")
SDW_METHODS = ("SDW-kde", "SDW-knn", "SDW-flow")
REFERENCES = {name: kind for kind, name in tables.REFERENCE_LABELS.items()}
CLAIM_D = "(d) the ordering of datasets flips between high and low training loss"


@dataclass
class Sweep:
    """One configured sweep: its name, directory, the command that makes it, its jobs, and how
    many jobs its grid has (None where the config does not say)."""

    name: str
    dir: Path
    command: str
    runs: list[Run]
    planned: int | None = None

    @property
    def finished(self) -> int:
        """Jobs that have ended, done or failed."""
        return sum(r["status"] in ("done", "failed") for r in self.runs)


def dataset_label(dataset: str) -> str:
    key = env_level(dataset)
    return f"{papers.ENV_SHORT[key[0]]} {papers.LEVEL_SHORT[key[1]]}" if key else dataset


def load_sweeps(cfg: DictConfig) -> list[Sweep]:
    """The configured sweeps; one without job directories (not run yet) has no runs."""
    sweeps = []
    for name, spec in cfg.sweeps.items():
        root = Path(spec.dir)
        try:
            runs = collect_runs([root])
        except UserError:  # no such directory, or no job in it: the sweep has not run yet
            runs = []
        sweeps.append(Sweep(name, root, spec.command, runs, spec.get("jobs")))
    return sweeps


class Scores:
    """The samples of a set of runs: each (method, dataset)'s seed scores and each dataset's
    references (the random subset's and whole-data BC's students, the teacher's episodes), and
    each dataset's map from normalised score to raw return; `declared` names the datasets the
    study declares failing the premise, with the reason."""

    def __init__(self, runs: Sequence[Run], declared: Mapping[str, str] | None = None) -> None:
        self.declared = dict(declared or {})
        by_cell: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.return_maps: dict[str, tuple[float, float]] = {}
        for run in runs:
            if run["status"] == "done" and run["score"] is not None:
                by_cell[(run["method"], run["dataset"])].append(float(run["score"]))
            if run.return_map is not None:
                self.return_maps.setdefault(label(run["dataset"]), run.return_map)
        self.samples = {key: Sample.of(values) for key, values in by_cell.items()}
        spec = tables.TableSpec(rows="method", cols="dataset")
        for dataset in {label(run["dataset"]) for run in runs}:
            for name, kind in REFERENCES.items():
                cell = tables.reference_cell(runs, spec, dataset, kind)
                if cell.n:
                    self.samples[(name, dataset)] = Sample.of(cell.values)

    def get(self, method: str, dataset: str) -> Sample:
        return self.samples.get((method, dataset), Sample())

    def datasets(self) -> list[str]:
        order = {key: i for i, key in enumerate(
            (env, level) for env in papers.ENVS for level in papers.LEVELS)}
        return sorted({d for _, d in self.samples},
                      key=lambda d: (order.get(env_level(d), len(order)), d))

    def d4rl(self, score: float | None, dataset: str) -> float | None:
        """A local normalised score in D4RL's units: raw return normalised with D4RL's
        reference returns of the same env (None without a return map or a D4RL env)."""
        return papers.to_d4rl(score, dataset, self.return_maps.get(dataset))


def write_results(cfg: DictConfig) -> Path:
    """Build the page from the sweeps and write it to cfg.out."""
    sweeps = load_sweeps(cfg)
    by_name = {s.name: s for s in sweeps}
    test = Welch(**OmegaConf.to_container(cfg.test))
    d = cfg.decimals
    main_runs = [r for name in cfg.main_sweeps for r in by_name[name].runs]
    scores = Scores(main_runs, OmegaConf.to_container(cfg.premise_fails)
                    if cfg.get("premise_fails") else None)
    lines = [f"# {cfg.title}", "",
             f"Generated by `{cfg.command}` from the job directories of the sweeps below (and "
             f"sdw-analyze's table for claim d); do not edit by hand. The papers' numbers are "
             f"D4RL with the papers' GPU configuration and are labelled as theirs.", ""]
    lines += _progress([by_name[name] for name in cfg.get("study_sweeps") or ()])
    judged = [verdicts.claim_a(scores, test), verdicts.claim_b(scores, test)]
    sdw_claims = [verdicts.claim_c(scores, m, test) for m in SDW_METHODS]
    d_section, d_line, d_word = _claim_d(list(cfg.misalignment), test, d)
    lines += _intro(cfg)
    lines += ["## Verdicts", "",
              "One line per claim, judged as the papers state it: each link of the claim "
              "averaged over the datasets (or envs) that pass its premise and have an interval, "
              "with Welch's interval of that average; **reproduced** when every averaged link is "
              "above 0 beyond its interval, **not reproduced** when one is below, "
              "**inconclusive** when a link is a tie. The per-dataset count follows. A dataset "
              "whose teacher is not above whole-data BC and the random subset fails the premise "
              "of these teacher-based claims and is left out (the Premise table). The section "
              "[The rules on the papers' own tables](#the-rules-on-the-papers-own-tables) "
              "applies the same code to OBD's and SDW's published numbers.", "",
              *(f"- {_verdict_line(c, d)}" for c in judged),
              *(f"- {_verdict_line(c, d)}" for pair in sdw_claims for c in pair),
              f"- {d_line}", ""]
    lines += _in_short([*judged, *(c for pair in sdw_claims for c in pair)], d_word,
                       scores, cfg.get("limits"))
    lines += _setup(sweeps)
    lines += _main_table(main_runs, d, OmegaConf.to_container(cfg.get("grid") or {}))
    lines += _paper_table(scores, d)
    lines += _aggregates(main_runs, cfg)
    lines += _premise(scores, d)
    if cfg.get("pilot"):
        p = cfg.pilot
        lines += pilot.section(by_name[p.sweep].runs, list(p.lengths), p.limit,
                               Path(cfg.out).parent / p.figure, d, by_name[p.sweep].command,
                               p.get("curves"))
        lines += pilot.study_section(main_runs, p.limit, Path(cfg.out).parent / p.study_figure,
                                     d, dataset_label)
    lines += _claim_section("## Claim (a): Av-PBC > PBC > DBC > random subset (OBD)", judged[:1],
                            test, d)
    lines += _claim_section("## Claim (b): Av-PBC distils medium-replay better than "
                            "medium-expert, while BC on the whole data ranks medium-expert first "
                            "(OBD)", judged[1:], test, d)
    lines += _claim_section("## Claim (c): SDW beats Av-PBC where state diversity is limited "
                            "(medium, medium-expert), and gains less on medium-replay (SDW)",
                            [c for pair in sdw_claims for c in pair], test, d,
                            "ESS/N of the weights is in the table under the methods table, per "
                            "SDW cell. The second half is the contrast (mean gain on medium and "
                            "medium-expert) - (gain on medium-replay) per env: ties on either "
                            "side are inconclusive, not evidence for the claim.")
    lines += d_section
    lines += _papers_check(test, d)
    if cfg.budget_sweep in by_name:
        lines += _budget(by_name[cfg.budget_sweep], test, d)
    if cfg.calibration.sweep in by_name:
        lines += _calibration(by_name[cfg.calibration.sweep], cfg, main_runs, test, d)
    lines += _compute(sweeps)
    out = Path(cfg.out)
    text = "\n".join(lines) + "\n"
    atomic_write(out, lambda f: f.write(text), mode="w")
    return out


def _verdict_line(claim: verdicts.Claim, d: int) -> str:
    """`**(a) ...: reproduced** at the average (...); per dataset: holds on ...`."""
    links = "; ".join(f"{name} {link.text(d)}" for name, link in zip(claim.link_names,
                                                                       claim.averaged))
    where = f"averaged: {links}" if claim.averaged else "no judged unit"
    return f"**{claim.title}: {claim.plain}** ({where}). Per {claim.unit_kind[:-1]}: {claim.tally()}."


def _claim_section(heading: str, claims: Sequence[verdicts.Claim], test: Welch, d: int,
                   note: str = "") -> list[str]:
    lines = [heading, "", _legend(test), ""] + ([note, ""] if note else [])
    for claim in claims:
        unit = claim.unit_kind[:-1]
        lines += [f"### {claim.title}", "",
                  f"| {unit} | " + " | ".join(claim.link_names) + " | verdict |",
                  "|---|" + "---|" * len(claim.link_names) + "---|"]
        for u in claim.units:
            verdict = f"premise fails ({u.flag})" if u.flag else _unit_word(u.verdict)
            lines.append(f"| {u.name} | " + " | ".join(_diff_cell(l, d) for l in u.links)
                         + f" | {verdict} |")
        lines.append(f"| **average of the judged {claim.unit_kind}** | "
                     + " | ".join(_diff_cell(l, d) for l in claim.averaged)
                     + f" | **{claim.plain}** |")
        lines += ["", f"Per {unit}: {claim.tally()}.", ""]
    return lines


def _in_short(claims: Sequence[verdicts.Claim], claim_d_word: str, scores: Scores,
              limits: str | None) -> list[str]:
    """The verdicts in one plain paragraph, grouped by outcome, with the datasets left out, then
    what the setup can and cannot say (conf/results.yaml `limits`)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for claim in claims:
        groups[claim.plain].append(claim.title)
    groups[claim_d_word].append(CLAIM_D)
    outcomes = [("reproduced", "Held at the averaged level the papers state"),
                ("not reproduced", "Did not hold"),
                ("inconclusive", "Inconclusive (a tie at the average)"),
                ("no verdict", "Without a verdict (missing runs or too few seeds)")]
    sentences = [f"{heading}: {'; '.join(groups[word]) or 'none'}."
                 for word, heading in outcomes]
    failing = [x for x in scores.datasets() if verdicts.premise(scores, x)]
    sentences.append(f"The teacher-based claims leave out {len(failing)} of "
                     f"{len(scores.datasets())} datasets, whose teacher fails the premise"
                     + (f": {', '.join(failing)}." if failing else "."))
    lines = ["## In short", "", " ".join(sentences), ""]
    return lines + ([limits.strip(), ""] if limits else [])


def _unit_word(verdict: str) -> str:
    return "inconclusive (a tie)" if verdict == TIE else verdict


def _papers_check(test: Welch, d: int) -> list[str]:
    """The verdict code applied to the papers' own tables, as exact numbers."""
    lines = ["## The rules on the papers' own tables", "",
             "The same verdict code, applied to OBD Table 1 (its offline-RL row, Cal-QL, as the "
             "teacher) and SDW's public headline scores, each a published mean taken as exact. "
             "A rule that called the papers' own data not reproduced would be the wrong rule.", "",
             "| claim | verdict | averaged | per unit |", "|---|---|---|---|"]
    claims = verdicts.paper_claims(test)
    for claim in claims:
        links = "; ".join(f"{n} {l.diff:+.{d}f}" if l.diff is not None else f"{n} —"
                          for n, l in zip(claim.link_names, claim.averaged)) or "—"
        lines.append(f"| {claim.title} | {claim.plain} | {links} | {claim.tally()} |")
    flagged = sorted(f"{u.name} ({u.flag})" for u in claims[0].units if u.flag)
    return lines + ["", "On the papers' data the premise fails on " + (", ".join(flagged) or
                    "no dataset") + ". SDW's medium-replay scores are not public here, so its "
                    "contrast has no verdict on the papers' data.", ""]


def _intro(cfg: DictConfig) -> list[str]:
    return [cfg.intro.strip(), ""] if cfg.intro else []


def _progress(sweeps: Sequence[Sweep]) -> list[str]:
    """A warning while the study's sweeps have finished fewer jobs than their grids plan."""
    planned = [s for s in sweeps if s.planned]
    finished, grid = sum(s.finished for s in planned), sum(s.planned for s in planned)
    if finished >= grid:
        return []
    counts = ", ".join(f"{s.name} {s.finished} of {s.planned}" for s in planned)
    return [f"**In progress: {finished} of {grid} jobs of the study's grid have finished** "
            f"({counts}). Every table and verdict below is from the finished jobs only and will "
            f"change as the rest land.", ""]


def _setup(sweeps: Sequence[Sweep]) -> list[str]:
    """The configuration every sweep actually ran, read from its jobs' .hydra/config.yaml."""
    lines = ["## Setup", "", "| sweep | command | jobs | outer steps | outer optimiser | inner steps "
             "| synthetic pairs | evaluation |", "|---|---|---|---|---|---|---|---|"]
    for sweep in sweeps:
        if not sweep.runs:
            of = f"0 of {sweep.planned}: " if sweep.planned else ""
            lines.append(f"| {sweep.name} | `{sweep.command}` | {of}not run yet (no job in "
                         f"`{sweep.dir}`) | | | | | |")
            continue
        configs = [OmegaConf.load(Path(r["run_dir"]) / ".hydra" / "config.yaml") for r in sweep.runs]

        def values(template: str, *keys: str) -> str:
            texts = {template.format(*(OmegaConf.select(c, k, default="?") for k in keys))
                     for c in configs}
            return "; ".join(sorted(texts, key=_numbers_first))

        of = f" of {sweep.planned}" if sweep.planned else ""
        lines.append("| " + " | ".join([
            sweep.name, f"`{sweep.command}`",
            f"{len(sweep.runs)}{of} ({status_counts(sweep.runs)})",
            values("{}", "outer_steps"), values("{} lr {}", "outer_optim.name", "outer_optim.lr"),
            values("{} {}", "inner_optim.steps", "inner_optim.name"),
            values("{}", "synthetic.size"),
            values("{} students x {} episodes every {} steps, score = mean of the last {}",
                   "eval.students", "eval.episodes", "eval.every", "eval.last_k")]) + " |")
    return lines + [""]


def _main_table(runs: Sequence[Run], d: int, grid: Mapping[str, Sequence[str]]) -> list[str]:
    """The methods table; a cell outside the study's grid (`grid`: method -> the levels it runs
    on) is left empty and named in a note, not listed as a missing job."""
    lines = ["## Methods on the nine local datasets", ""]
    if not runs:
        return lines + ["No job of the main sweeps has run yet.", ""]
    datasets = Scores(runs).datasets()
    spec = tables.TableSpec(rows="method", cols="dataset", row_order=list(METHODS),
                            col_order=datasets, decimals=d)
    table = tables.build_table(runs, spec)

    def outside(o: tables.Omission) -> bool:
        """A cell with no job at all at a level its method's grid leaves out."""
        where = env_level(o.col)
        return (o.row in grid and o.status == "no job directory" and o.seed is None
                and where is not None and where[1] not in grid[o.row])

    dropped, kept = defaultdict(list), []
    for o in table.omissions:
        if outside(o):
            dropped[o.row].append(o.col)
        else:
            kept.append(o)
    notes = [f"{method}: no job on {', '.join(cols)}, outside the study's grid (it runs on the "
             f"{', '.join(grid[method])} datasets only)" for method, cols in dropped.items()]
    table = replace(table, omissions=kept, notes=table.notes + notes)
    return lines + [tables.to_markdown(table), ""] + _ess_table(table)


def _aggregates(runs: Sequence[Run], cfg: DictConfig) -> list[str]:
    """IQM, mean and optimality gap over the nine datasets with stratified bootstrap intervals,
    the probabilities of improvement and the figure, as rliable computes them."""
    a = cfg.aggregate
    lines = ["## Aggregates across the datasets", ""]
    matrices, datasets, notes = aggregates.score_matrices(runs, "method", "dataset", "score")
    if not matrices:
        return lines + ["No method has a seed on every dataset yet.", ""]
    estimates = aggregates.interval_estimates(matrices, a.reps, a.seed)
    improvements = aggregates.improvement(matrices, a.improvement, a.reps, a.seed)
    aggregates.plot_profiles(matrices, Path(cfg.out).parent / a.figure, a.reps, a.seed, estimates)
    text = aggregates.to_markdown(estimates, improvements, datasets,
                                  {m: len(v) for m, v in matrices.items()}, notes, a.reps)
    lines += [
        "As Agarwal et al. (2021) recommend and rliable computes them, in the local units (each "
        "dataset's own reference returns): every seed of a method counts once per dataset; the "
        "bootstrap resamples seeds within each dataset. These pool datasets where the teacher "
        "fails the premise, so they describe the setup as run, not the claims.", "",
        text, f"![Performance profiles and aggregate scores]({a.figure})", ""]
    return lines + _shared_aggregates(runs, set(matrices), cfg)


def _shared_aggregates(runs: Sequence[Run], aggregated: set[str], cfg: DictConfig) -> list[str]:
    """The aggregates again on the datasets that every method has a finished job on, where the
    nine-dataset ones left a method out (one the study's grid runs on fewer datasets)."""
    done = [r for r in runs if r["status"] == "done" and r["score"] is not None]
    methods = {r["method"] for r in done}
    if methods <= aggregated:
        return []
    shared = set.intersection(*({label(r["dataset"]) for r in done if r["method"] == m}
                                for m in methods))
    matrices, datasets, notes = aggregates.score_matrices(
        [r for r in done if label(r["dataset"]) in shared], "method", "dataset", "score")
    lines = ["### On the datasets every method ran", ""]
    if not matrices:
        return lines + ["No dataset has a finished job of every method yet.", ""]
    a = cfg.aggregate
    estimates = aggregates.interval_estimates(matrices, a.reps, a.seed)
    improvements = aggregates.improvement(matrices, a.improvement, a.reps, a.seed)
    return lines + [
        f"The same aggregates, so that {', '.join(sorted(methods - aggregated))} (left out "
        "above) stand beside the other methods.", "",
        aggregates.to_markdown(estimates, improvements, datasets,
                               {m: len(v) for m, v in matrices.items()}, notes, a.reps)]


def _ess_table(table: tables.Table) -> list[str]:
    """ESS/N of the SDW weights beside each SDW cell: mean (min–max) over the cell's seeds."""
    if not table.ess:
        return []
    lines = ["### ESS/N of the SDW weights per dataset", "",
             "The weighting asks for the target ESS/N of its job's configuration "
             "(`weighting.target_ess`; the study's SDW jobs take the calibration's choice, frozen "
             "in conf/experiment/sdw-study-local.yaml); where even the full reciprocal density "
             "(the exponent's cap `alpha`) is flatter than that, the weights keep the cap and a "
             "higher ESS/N. Mean (min–max) over the cell's seeds.", "",
             "| method | " + " | ".join(table.cols) + " |", "|---|" + "---|" * len(table.cols)]
    for method in SDW_METHODS:
        cells = [tables.format_ess(table.ess[(method, x)]) if (method, x) in table.ess
                 else tables.MISSING for x in table.cols]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines + [""]


def _paper_table(scores: Scores, d: int) -> list[str]:
    """Ours beside OBD Table 1 (and SDW's headline numbers), ours in D4RL's units."""
    datasets = [x for x in scores.datasets() if env_level(x)]
    lines = ["## Beside the papers", "",
             "Ours: the seed mean on the local suite, converted to D4RL's units: each score back "
             "to its raw return (the local dataset's own reference returns, read off its "
             "evaluations), then normalised with D4RL's reference returns of the same env "
             "(hopper -20.3 / 3234.3, halfcheetah -280.2 / 12135.0, walker2d 1.6 / 4592.3), so "
             "both sides of a cell are in one unit. The local unit is in the methods table. "
             "Paper: OBD Table 1 (D4RL, 256 pairs); SDW: its reported score where public. The "
             "datasets still differ (our own collection, other teachers, far fewer outer "
             "steps: see Setup), so compare orderings, not values.", ""]
    if not datasets:
        return lines + ["No dataset has results yet.", ""]
    lines += ["| method | " + " | ".join(dataset_label(x) + " ours (D4RL units) / paper"
                                         for x in datasets) + " |",
              "|---|" + "---|" * len(datasets)]
    for method in (verdicts.RANDOM, "DBC", "PBC", "Av-PBC", *SDW_METHODS, verdicts.BC):
        cells = []
        for x in datasets:
            ours = scores.d4rl(scores.get(method, x).mean, x)
            if method in SDW_METHODS:
                paper = papers.SDW_HEADLINE.get(env_level(x))
            else:
                paper = papers.OBD_TABLE1.get(method, {}).get(env_level(x))
            cells.append(f"{tables.format_number(ours, d)} / {tables.format_number(paper, d)}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines + [""]


def _premise(scores: Scores, d: int) -> list[str]:
    """Each dataset's references and whether it meets the teacher-based claims' premise."""
    lines = ["## Premise and headroom", "",
             "What distillation can gain over the random subset of the same size, and whether "
             "the teacher (the PBC / Av-PBC / SDW target) beats whole-data BC and the random "
             "subset, which the teacher-based claims presuppose. Means ± std with their sample "
             "sizes: the random subset over its students, whole-data BC over its students, the "
             "teacher over its evaluation episodes where the runs recorded them.", "",
             "| dataset | random subset | BC (whole data) | teacher | teacher - random | "
             "teacher - BC | premise |", "|---|---|---|---|---|---|---|"]
    for x in scores.datasets():
        rnd, bc, teacher = (scores.get(m, x) for m in (verdicts.RANDOM, verdicts.BC,
                                                        verdicts.TEACHER))
        reason = verdicts.premise(scores, x)
        lines.append(f"| {x} | {_cell(rnd, d, 'student')} | {_cell(bc, d, 'student')} | "
                     f"{_cell(teacher, d, 'episode')} | "
                     f"{_gap(teacher, rnd, d)} | {_gap(teacher, bc, d)} | "
                     f"{'fails: ' + reason if reason else 'holds'} |")
    return lines + [""]


def _cell(sample: Sample, d: int, unit: str) -> str:
    """`55.0 ± 0.8 (3 episodes)`; a teacher recorded as one number is `49.0 (1 policy)`."""
    if sample.n == 1 and unit == "episode":
        return tables.format_cell(sample, d, tables.REFERENCE_UNITS["teacher"])
    return tables.format_cell(sample, d, (unit, unit + "s"))


def _claim_d(paths: Sequence[str], test: Welch, d: int) -> tuple[list[str], str, str]:
    """The loss-level crossover from sdw-analyze's orderings.json files (docs/analysis.md): the
    section, the verdict line and the verdict's word."""
    lines = ["## Claim (d): the ordering of datasets flips between high and low training loss "
             "(SDW's misalignment)", "",
             "From `sdw-analyze` (docs/analysis.md has the curves and how the loss levels were "
             "made): BC students ranked by normalised return early and late in training of "
             "their largest training set (by step), and at the highest and the lowest training "
             "loss that every dataset reaches, its students of every training-set size pooled "
             "(by loss; n/a when the loss ranges do not overlap); mean ± "
             "std over seeds where sdw-analyze gives it. When the leader changes, the two leaders "
             "are compared at each end with the Welch interval of the claims above (over seeds); it is "
             "a crossover only when both differences exclude 0. The by-loss rankings interpolate "
             "each seed's own points, so their leader changes are tested the same way.", "",
             "| orderings | view | ranking at high loss | ranking at low loss | crossover |",
             "|---|---|---|---|---|"]
    found = defaultdict(list)
    for path in map(Path, paths):
        if not path.is_file():
            lines.append(f"| `{path}` | | not run yet | | |")
            continue
        order = json.loads(path.read_text())
        views = [("by step", order["first_step"], order["last_step"]),
                 ("by loss", order.get("high_loss"), order.get("low_loss"))]
        for view, high, low in views:
            if high is None or low is None:
                lines.append(f"| `{path}` | {view} | the loss ranges do not overlap | | n/a |")
                found[view].append("n/a")
                continue
            kind, crossover = _crossover(high, low, test, d)
            found[view].append(kind)
            lines.append(f"| `{path}` | {view} | {_ranking(high)} | {_ranking(low)} | "
                         f"{crossover} |")
    word = _crossover_word(found.get("by loss", []))
    verdict = (f"**{CLAIM_D}: {word}** (judged by training loss, the "
               "claim's own terms; the by-step view is shown, not judged). "
               + ("; ".join(f"{view}: " + ", ".join(f"{v} in {n}" for v, n in
                                                     _counts(kinds).items())
                            + f" of {len(kinds)} orderings" for view, kinds in found.items())
                  or "not run yet")
               + " (the orderings files in the section below).")
    return lines + [""], verdict, word


def _crossover(high: dict, low: dict, test: Welch, d: int) -> tuple[str, str]:
    """(kind, cell): the same leader, or the leaders' differences at both ends and whether they
    make a crossover (both exclude 0), a tie, or an untested leader change."""
    first, last = high["ranking"][0][0], low["ranking"][0][0]
    if first == last:
        return "same leader", "no: the same leader"

    def seeds(entry: dict, name: str) -> Sample:
        item = next(item for item in entry["ranking"] if item[0] == name)
        return Sample.of(item[3] if len(item) > 3 and item[3] else [])

    early = difference(first, last, seeds(high, first), seeds(high, last), test)
    late = difference(last, first, seeds(low, last), seeds(low, first), test)
    if early.verdict in (MISSING, TOO_FEW) or late.verdict in (MISSING, TOO_FEW):
        return "untested leader change", "the leader changes (no seed scores to test it)"
    where = f"{first} - {last} {_diff_cell(early, d)} at high loss, {last} - {first} " \
            f"{_diff_cell(late, d)} at low loss"
    if early.verdict == HIGHER and late.verdict == HIGHER:
        return "crossover", f"yes: {where}"
    return "tie", f"no, a tie: the leader changes within the seed spread ({where})"


def _crossover_word(kinds: Sequence[str]) -> str:
    """`reproduced` when every tested ordering crosses over, `not reproduced` when none does and
    one keeps its leader, `inconclusive` otherwise; `no verdict` without a tested ordering
    (loss ranges that do not overlap, or leader changes without seed scores)."""
    judged = [k for k in kinds if k in ("crossover", "tie", "same leader")]
    if not judged:
        return "no verdict"
    if all(k == "crossover" for k in judged):
        return "reproduced"
    if "crossover" not in judged and "same leader" in judged:
        return "not reproduced"
    return "inconclusive"


def _ranking(entry: dict) -> str:
    where = f"step {entry['step']}" if "step" in entry else f"loss {entry['loss']:.3g}"
    return f"{where}: " + " > ".join(
        f"{item[0]} ({item[1]:.1f}" + (f" ± {item[2]:.1f})" if len(item) > 2 and item[2] is not None else ")")
        for item in entry["ranking"])


def _budget(sweep: Sweep, test: Welch, d: int) -> list[str]:
    """Av-PBC against the synthetic budget, each size beside a random subset of the same size
    (a reference per size: the methods table's reference rows would pool the sizes)."""
    lines = ["## Synthetic budget (OBD Table 5)", "", f"`{sweep.command}`", ""]
    if not sweep.runs:
        return lines + ["Not run yet.", ""]
    spec = tables.TableSpec(rows="synthetic.size", cols="dataset", decimals=d, references=False)
    table = tables.build_table(sweep.runs, spec)
    lines += ["Av-PBC: mean ± std (seeds); the random subset: mean ± std over its students (one "
              "per random subset of that size). " + _legend(test), "",
              "| dataset | pairs | Av-PBC | random subset, same size | Av-PBC - random | "
              "paper (OBD Table 5) |", "|---|---|---|---|---|---|"]
    for col in table.cols:
        env = (env_level(col) or ("", ""))[0]
        for size in table.rows:
            runs = [r for r in sweep.runs if label(r["synthetic.size"]) == size]
            scores = table.cells.get((size, col))
            cell = tables.reference_cell(runs, spec, col, "random_subset")
            method = Sample.of(scores.values if scores else [])
            diff = difference("Av-PBC", "random", method, Sample.of(cell.values), test)
            paper = papers.OBD_TABLE5.get(env, {}).get(int(float(size)))
            reference = tables.format_cell(cell, d, tables.REFERENCE_UNITS["random_subset"])
            lines.append(f"| {col} | {size} | {tables.format_cell(scores, d)} | {reference} | "
                         f"{_diff_cell(diff, d)} | {tables.format_number(paper, d)} |")
    return lines + ["", "Paper: Av-PBC on D4RL medium-replay of the same environment, with the "
                    "papers' configuration (compare the trend, not the values).", "",
                    tables.omissions_markdown(table)]


def _numbers_first(text: str) -> tuple[int, float, str]:
    """Sort key: numbers by value (16 before 128), then other text alphabetically."""
    try:
        return 0, float(text), ""
    except ValueError:
        return 1, 0.0, text


def _calibration(sweep: Sweep, cfg: DictConfig, main_runs: Sequence[Run], test: Welch,
                 d: int) -> list[str]:
    """The calibration table, each setting's difference to the best one and to unweighted Av-PBC
    of the study on the same dataset with the same teacher, and the rule's choice (every
    estimator and setting)."""
    lines = ["## SDW calibration (one environment, then frozen)", "", f"`{sweep.command}`", "",
             cfg.calibration.note.strip(), ""]
    if not sweep.runs:
        return lines + ["Not run yet.", ""]
    for run in sweep.runs:
        run.row["setting"] = calibration_setting(run)
    spec = tables.TableSpec(rows="setting", cols="dataset", decimals=d)
    table = tables.build_table(sweep.runs, spec)
    lines += [tables.to_markdown(table), ""]
    settings: dict[str, list[float]] = defaultdict(list)
    for (name, _), cell in table.cells.items():
        settings[name].extend(cell.values)
    unweighted = _unweighted_avpbc(main_runs, sweep.runs, table.cols)
    best = max(settings, key=lambda name: np.mean(settings[name]))
    lines += [f"Differences to the best setting by seed mean ({best}) and to Av-PBC without "
              f"weights (ESS/N 1, from the study's main sweeps on the same dataset with the same "
              f"teacher: {_mean(unweighted, d)} over {unweighted.n} seeds): {_legend(test)}", "",
              "| setting | seeds | - best | - Av-PBC |", "|---|---|---|---|"]
    for name, values in sorted(settings.items()):
        to_best = (_diff_cell(difference(name, best, Sample.of(values),
                                         Sample.of(settings[best]), test), d)
                   if name != best else "(the best)")
        to_avpbc = _diff_cell(difference(name, "Av-PBC", Sample.of(values), unweighted, test), d)
        lines.append(f"| {name} | {len(values)} | {to_best} | {to_avpbc} |")
    ties = [name for name in settings if name != best and difference(
        name, best, Sample.of(settings[name]), Sample.of(settings[best]), test).verdict == TIE]
    return lines + ["", f"By the rule: {best} has the highest seed mean of the "
                    f"{len(settings)} settings and becomes the frozen weighting"
                    + (f"; within its interval (a tie): {'; '.join(sorted(ties))}." if ties
                       else "."), ""]


def _unweighted_avpbc(main_runs: Sequence[Run], calibration: Sequence[Run],
                      datasets: Sequence[str]) -> Sample:
    """The seed scores of the main sweeps' Av-PBC on the calibration's one dataset, from jobs
    with a teacher of the calibration's (an earlier teacher's Av-PBC is not comparable)."""
    if len(datasets) != 1:
        return Sample()
    teachers = [run.teacher for run in calibration]
    return Scores([run for run in main_runs if run.teacher in teachers]).get("Av-PBC",
                                                                              datasets[0])


def calibration_setting(run: Run) -> str:
    """`knn, ESS/N 0.25, clip none`: the density and weighting settings of a calibration job."""
    return (f"{run['density']}, ESS/N {run['weighting.target_ess'] or 'default'}, "
            f"clip {run['weighting.clip_quantile'] or 'none'}")


def _compute(sweeps: Sequence[Sweep]) -> list[str]:
    lines = ["## Compute", "",
             "Job seconds: the sum of the jobs' own wall clock (status.json timings, total); "
             "sweeps ran two 1-thread jobs at a time on 2 CPU cores, so the wall clock of a "
             "sweep is about half of it.", "",
             "| sweep | jobs | job hours | median job seconds | first start | last finish "
             "| commits |", "|---|---|---|---|---|---|---|"]
    for sweep in sweeps:
        totals = [float(r["time_total"]) for r in sweep.runs if r["time_total"] is not None]
        seconds = sum(totals)
        median = f"{np.median(totals):.0f}" if totals else tables.MISSING
        starts = sorted(r["started"] for r in sweep.runs if r["started"])
        ends = sorted(r["finished"] for r in sweep.runs if r["finished"])
        commits = sorted({str(r["git_commit"])[:7] for r in sweep.runs if r["git_commit"]})
        lines.append(f"| {sweep.name} | {len(sweep.runs)} | {seconds / 3600:.2f} | {median} | "
                     f"{starts[0] if starts else '—'} | {ends[-1] if ends else '—'} | "
                     f"{', '.join(commits) or '—'} |")
    return lines + [""]


def _legend(test: Welch) -> str:
    return (f"Cells: difference of means [{test.level:.0%} Welch interval: the t quantile with "
            f"Welch-Satterthwaite degrees of freedom times the standard error of the difference; "
            f"a method's sample is its seeds, the random subset's and whole-data BC's their "
            f"students, the teacher's its evaluation episodes]; **bold** when the interval "
            f"excludes 0, otherwise a tie (inconclusive); no interval with fewer than "
            f"{MIN_VALUES} values on a side. Under the null the interval calls a difference in "
            f"at most about 5% of draws at 3 vs 3 and 5 vs 5 seeds (tests/test_report_claims.py "
            f"simulates it).")


def _diff_cell(diff: Difference, d: int) -> str:
    text = diff.text(d)
    return f"**{text}**" if diff.verdict in (HIGHER, LOWER) else text


def _counts(verdicts: Sequence[str]) -> dict[str, int]:
    return {v: list(verdicts).count(v) for v in dict.fromkeys(verdicts)}


def _mean(sample: Sample, d: int) -> str:
    return tables.format_number(sample.mean, d)


def _gap(a: Sample, b: Sample, d: int) -> str:
    if not a.n or not b.n:
        return tables.MISSING
    return f"{a.mean - b.mean:+.{d}f}"
