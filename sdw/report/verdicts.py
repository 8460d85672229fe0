"""The study's claims judged as the papers state them: averaged over datasets, and per dataset.

One code path judges our runs and the papers' own tables (sdw.report.papers, as exact numbers),
so the page can show that the rules call the papers' data reproduced. A claim's averaged verdict
is its headline; the per-dataset (or per-env) verdicts are counted beside it. Ties are
inconclusive, never failures. A dataset whose teacher does not beat whole-data BC and the random
subset (means) fails the premise of the teacher-based claims: it is flagged and left out, as is
one the study declares failing for a reason the scores cannot show (a teacher that never levelled
off: conf/results.yaml `premise_fails`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sdw.report import papers
from sdw.report.claims import (MISSING, TIE, TOO_FEW, Difference, Sample, Welch,
                               averaged_difference, chain_verdict, contrast, difference)

RANDOM, BC, TEACHER = "Random subset", "BC (whole data)", "Teacher"
PLAIN = {"holds": "reproduced", "broken": "not reproduced", TIE: "inconclusive",
         MISSING: "no verdict", TOO_FEW: "no verdict"}
"""Averaged verdict -> the headline word."""


class ScoreSource(Protocol):
    """Samples by (method or reference, dataset): our seeds, or a paper's published means; and
    the datasets declared failing the premise (dataset -> reason)."""

    declared: Mapping[str, str]

    def get(self, method: str, dataset: str) -> Sample: ...

    def datasets(self) -> list[str]: ...


@dataclass
class Unit:
    """One dataset (or env) of a claim: its differences, their chain verdict, or why it is left
    out (`flag`, the premise it fails)."""

    name: str
    links: list[Difference]
    flag: str | None = None

    @property
    def verdict(self) -> str:
        return "premise fails" if self.flag else chain_verdict(self.links)


@dataclass
class Claim:
    """A claim's links averaged over its judged units, and every unit."""

    title: str
    link_names: list[str]
    averaged: list[Difference]
    units: list[Unit] = field(default_factory=list)
    unit_kind: str = "datasets"

    @property
    def averaged_verdict(self) -> str:
        return chain_verdict(self.averaged) if self.averaged else MISSING

    @property
    def plain(self) -> str:
        return PLAIN[self.averaged_verdict]

    def tally(self) -> str:
        """`holds on 4 of 7 judged datasets (2 broken, 1 inconclusive); 2 fail the premise`."""
        judged = [u.verdict for u in self.units if u.verdict in ("holds", "broken", TIE)]
        counts = {"broken": judged.count("broken"), "inconclusive": judged.count(TIE)}
        rest = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        text = f"holds on {judged.count('holds')} of {len(judged)} judged {self.unit_kind}"
        text += f" ({rest})" if rest else ""
        flagged = sum(1 for u in self.units if u.flag)
        unjudged = sum(1 for u in self.units if u.verdict in (MISSING, TOO_FEW))
        if flagged:
            text += f"; {flagged} {'fails' if flagged == 1 else 'fail'} the premise"
        if unjudged:
            text += f"; {unjudged} without a verdict (missing or too few seeds)"
        return text


def premise(source: ScoreSource, dataset: str) -> str | None:
    """Why `dataset` fails the teacher-based claims' premise, or None: the teacher's mean must be
    above whole-data BC's and the random subset's (headroom), and the dataset not declared failing."""
    if reason := source.declared.get(dataset):
        return reason
    teacher = source.get(TEACHER, dataset)
    if not teacher.n:
        return "no teacher score"
    reasons = []
    for name, reference in ((BC, "whole-data BC"), (RANDOM, "the random subset")):
        other = source.get(name, dataset)
        if other.n and teacher.mean <= other.mean:
            reasons.append(f"teacher {teacher.mean:.1f} not above {reference} {other.mean:.1f}")
    return "; ".join(reasons) or None


def _judged(units: Sequence[Unit]) -> list[Unit]:
    """The units the average runs over: premise met, every difference with an interval."""
    return [u for u in units if u.verdict in ("holds", "broken", TIE)]


def _averaged(names: Sequence[str], units: Sequence[Unit], pairs_of, test: Welch
              ) -> list[Difference]:
    judged = _judged(units)
    return [averaged_difference(*name.split(" > "), [pairs_of(u.name, i) for u in judged], test)
            for i, name in enumerate(names)]


def claim_a(source: ScoreSource, test: Welch) -> Claim:
    """(a) Av-PBC > PBC > DBC > random subset (OBD Table 1): each link averaged over datasets."""
    chain = ("Av-PBC", "PBC", "DBC", RANDOM)
    links = list(zip(chain, chain[1:]))
    units = [Unit(x, [difference(a, b, source.get(a, x), source.get(b, x), test)
                      for a, b in links], premise(source, x)) for x in source.datasets()]
    names = [f"{a} > {b}" for a, b in links]
    averaged = _averaged(names, units, lambda x, i: (source.get(links[i][0], x),
                                                     source.get(links[i][1], x)), test)
    return Claim(f"(a) {' > '.join(chain)}", names, averaged, units)


def _by_env(source: ScoreSource) -> dict[str, dict[str, str]]:
    """env -> level -> dataset name, for the datasets the source has."""
    found: dict[str, dict[str, str]] = {}
    for x in source.datasets():
        key = papers.env_level(x)
        if key:
            found.setdefault(key[0], {})[key[1]] = x
    return found


def claim_b(source: ScoreSource, test: Welch) -> Claim:
    """(b) Av-PBC distils medium-replay better than medium-expert while whole-data BC ranks
    medium-expert first (OBD): both halves averaged over envs."""
    halves = [("Av-PBC", "medium-replay", "medium-expert"), (BC, "medium-expert", "medium-replay")]
    names = ["Av-PBC M-R > M-E", "whole-data BC M-E > M-R"]
    units = []
    for env, levels in _by_env(source).items():
        if not {"medium-replay", "medium-expert"} <= levels.keys():
            continue
        flags = [f"{papers.LEVEL_SHORT[level]}: {reason}" for level in ("medium-replay",
                                                                        "medium-expert")
                 if (reason := premise(source, levels[level]))]
        units.append(Unit(env, [difference(f"{m} {hi}", f"{m} {lo}", source.get(m, levels[hi]),
                                           source.get(m, levels[lo]), test)
                                for m, hi, lo in halves],
                          "; ".join(flags) or None))
    by_env = _by_env(source)

    def pairs(env: str, i: int) -> tuple[Sample, Sample]:
        method, hi, lo = halves[i]
        return source.get(method, by_env[env][hi]), source.get(method, by_env[env][lo])

    judged = _judged(units)
    averaged = [averaged_difference(name, name, [pairs(u.name, i) for u in judged], test)
                for i, name in enumerate(names)]
    return Claim("(b) Av-PBC distils M-R better than M-E, whole-data BC ranks M-E first", names,
                 averaged, units, "envs")


def claim_c(source: ScoreSource, method: str, test: Welch) -> tuple[Claim, Claim]:
    """(c) `method` (SDW) beats Av-PBC where state diversity is limited (medium, medium-expert),
    and gains more there than on medium-replay (SDW): both averaged, the second per env."""
    limited = [x for x in source.datasets()
               if (papers.env_level(x) or ("", ""))[1] in ("medium", "medium-expert")]
    gain = [Unit(x, [difference(method, "Av-PBC", source.get(method, x),
                                source.get("Av-PBC", x), test)], premise(source, x))
            for x in limited]
    name = f"{method} > Av-PBC"
    averaged = _averaged([name], gain, lambda x, _: (source.get(method, x),
                                                      source.get("Av-PBC", x)), test)
    first = Claim(f"(c) {method} > Av-PBC on medium and medium-expert", [name], averaged, gain)

    def terms(levels: dict[str, str], weight: float) -> list[tuple[float, Sample]]:
        out = []
        for level in ("medium", "medium-expert"):
            out += [(weight / 2, source.get(method, levels[level])),
                    (-weight / 2, source.get("Av-PBC", levels[level]))]
        return out + [(-weight, source.get(method, levels["medium-replay"])),
                      (weight, source.get("Av-PBC", levels["medium-replay"]))]

    label = f"{method}'s gain on M/M-E > on M-R"
    units, by_env = [], _by_env(source)
    for env, levels in by_env.items():
        if not {"medium", "medium-expert", "medium-replay"} <= levels.keys():
            continue
        flags = [f"{papers.LEVEL_SHORT[level]}: {reason}" for level, x in sorted(levels.items())
                 if (reason := premise(source, x))]
        units.append(Unit(env, [contrast("M/M-E gain", "M-R gain", terms(levels, 1.0), test)],
                          "; ".join(flags) or None))
    envs = [by_env[u.name] for u in _judged(units)]
    averaged = [contrast("M/M-E gain", "M-R gain",
                         [t for levels in envs for t in terms(levels, 1 / len(envs))], test)
                ] if envs else []
    return first, Claim(f"(c) {method} gains more on medium and medium-expert than on "
                        "medium-replay", [label], averaged, units, "envs")


class PaperScores:
    """A paper's published means as exact numbers: OBD Table 1, its offline-RL (Cal-QL) row as
    the teacher, and SDW's headline scores as method `SDW`."""

    def __init__(self) -> None:
        rows = {**papers.OBD_TABLE1, TEACHER: papers.OBD_TABLE1_OFFLINE_RL,
                "SDW": papers.SDW_HEADLINE}
        self.declared: dict[str, str] = {}
        self.samples = {(method, f"{env}/{level}"): Sample.of([value], fixed=True)
                        for method, values in rows.items() for (env, level), value in values.items()}

    def get(self, method: str, dataset: str) -> Sample:
        return self.samples.get((method, dataset), Sample())

    def datasets(self) -> list[str]:
        return [f"{env}/{level}" for env in papers.ENVS for level in papers.LEVELS]


def paper_claims(test: Welch) -> list[Claim]:
    """The claims judged on the papers' own tables (what the rules must call reproduced)."""
    source = PaperScores()
    return [claim_a(source, test), claim_b(source, test), *claim_c(source, "SDW", test)]

