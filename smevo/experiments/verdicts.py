"""The paper's claims and their verdicts, from rank tests of operators against baselines
(`claims`; the rules in words: `CLAIM_RULES`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from smevo.experiments.grid import PAPER_SM_G
from smevo.experiments.results import Results, depth_of, typical_divergence
from smevo.experiments.stats import Proportion, RankTest
from smevo.experiments.tables import number, rank_text


@dataclass
class Claim:
    """One of the paper's claims, its verdict and the numbers behind it."""

    text: str
    status: str
    evidence: str
    sources: tuple[str, ...]
    """The experiments whose runs the verdict rests on."""


Comparison = tuple[RankTest | None, str]
"""A rank test of an operator against a baseline on one domain, and its line of evidence."""


def significant(comparison: Comparison) -> bool:
    """Whether the comparison's rank test gives p < 0.05."""
    return comparison[0] is not None and comparison[0].significant()


def tally(comparisons: list[Comparison]) -> tuple[int, int]:
    """(significantly better, significantly worse) among comparisons (effect > 0.5: better)."""
    wins = sum(significant(c) and c[0].effect > 0.5 for c in comparisons)
    losses = sum(significant(c) and c[0].effect < 0.5 for c in comparisons)
    return wins, losses


def verdict(wins: int, losses: int, total: int) -> str:
    """"reproduced" when every one of `total` comparisons is won, "partly" when more
    are won than lost, else "not reproduced"."""
    if total and wins == total:
        return "reproduced"
    if wins > losses:
        return "partly"
    return "not reproduced"


def versus(results: Results, domain: tuple[str, str], operators: Sequence[str],
           baseline: str, prefix: str = "") -> list[Comparison]:
    """`operators` against `baseline` on one domain (those with runs of both)."""
    found = []
    for operator in operators:
        rate, base = results.solve_rate(domain, operator), results.solve_rate(domain, baseline)
        if rate is None or base is None:
            continue
        test = results.compare(domain, operator, baseline)
        line = (f"{prefix}{results.label(domain)} {operator} {rate.successes}/{rate.trials} vs "
                f"{baseline} {base.successes}/{base.trials} solved")
        if unsolved_ranking(results, rate, base):
            medians = [number(float(np.median([r["best_fitness"] for r in results.runs(
                domain, op)]))) for op in (operator, baseline)]
            line += f", so ranked on final fitness: median {medians[0]} vs {medians[1]}"
        line += f", {rank_text(test)}"
        moved = [typical_divergence(results.runs(domain, op)) for op in (operator, baseline)]
        if None not in moved:
            line += f", divergence {moved[0]:.2g} vs {moved[1]:.2g}"
        found.append((test, line))
    return found


def unsolved_ranking(results: Results, *rates: Proportion) -> bool:
    """Whether a comparison on evaluations to solve rests on final fitness alone: no run of
    either side solved."""
    return results.experiment.score == "evaluations" and not any(r.successes for r in rates)


ON_FITNESS_ONLY = " (on final fitness only: no run solved)"
"""Appended to a verdict on evaluations to solve where no compared run solved."""


def evidence_of(comparisons: list[Comparison]) -> str:
    """The comparisons' lines of evidence, joined."""
    return "; ".join(line for _, line in comparisons)


def claim_washout(found: dict[str, Results]) -> Claim:
    """SM-G-ABS and SM-G-SO each against SM-G-SUM on the washout task."""
    text = "SM-G-SUM fails on the washout task, where SM-G-ABS and SM-G-SO succeed."
    results = found.get("illustrative")
    domain = ("washout", "toy2w")
    if results is None or not all(results.runs(domain, op) for op in PAPER_SM_G):
        return Claim(text, "not tested", "the illustrative washout runs of all three are missing",
                     ("illustrative",))
    found = versus(results, domain, ("SM-G-ABS", "SM-G-SO"), "SM-G-SUM")
    return Claim(text, verdict(*tally(found), len(found)), evidence_of(found), ("illustrative",))


def claim_versus_control(found: dict[str, Results], experiment: str,
                         domains: Callable[[Results], list[tuple[str, str]]],
                         text: str) -> Claim:
    """SM-G-SUM/ABS/SO against control on some domains of `experiment`."""
    results = found.get(experiment)
    chosen = domains(results) if results is not None else []
    compared = [c for domain in chosen for c in versus(results, domain, PAPER_SM_G, "control")]
    if not compared:
        return Claim(text, "not tested", f"no {experiment} runs of control and SM-G",
                     (experiment,))
    status = verdict(*tally(compared), len(compared))
    rates = [rate for domain in chosen for op in (*PAPER_SM_G, "control")
             if (rate := results.solve_rate(domain, op)) is not None]
    if unsolved_ranking(results, *rates):
        status += ON_FITNESS_ONLY
    return Claim(text, status, evidence_of(compared), (experiment,))


def gap_widens(results: Results | None) -> tuple[bool | None, list[str]]:
    """Whether SM-G-SUM's and SM-G-ABS's solve-rate gap to control is larger at the deepest
    depth than at the shallowest (None: fewer than two depths to compare), with the gaps and,
    for the reader (the verdict does not use them), each depth's rank effect A against
    control on the score, which also ranks the unsolved runs."""
    verdicts, text = [], []
    for operator in ("SM-G-SUM", "SM-G-ABS"):
        gaps, effects = [], []
        for domain in results.domains if results is not None else []:
            rate, control = (results.solve_rate(domain, operator),
                             results.solve_rate(domain, "control"))
            if rate is not None and control is not None:
                gaps.append((results.label(domain), rate.rate - control.rate))
                test = results.compare(domain, operator, "control")
                effects.append(f"{results.label(domain)} "
                               + ("—" if test is None else f"{test.effect:.2f}"))
        if len(gaps) >= 2:
            verdicts.append(gaps[-1][1] > gaps[0][1])
            text.append(f"{operator} − control solve rate: "
                        + ", ".join(f"{label} {gap:+.2f}" for label, gap in gaps)
                        + f" (A vs control: {', '.join(effects)})")
    return (all(verdicts) if verdicts else None), text


def weight(claim: Claim) -> float:
    """How far a part-claim holds: 1 reproduced, 0.5 partly, 0 not."""
    return {"reproduced": 1.0, "partly": 0.5}.get(claim.status.removesuffix(ON_FITNESS_ONLY),
                                                  0.0)


def combined(holds: list[float], parts: int) -> str:
    """The verdict of a claim of `parts` parts from how far each tested one holds: reproduced
    when all were tested and hold, partly when any holds at all."""
    if not holds:
        return "not tested"
    if len(holds) == parts and min(holds) == 1.0:
        return "reproduced"
    return "partly" if max(holds) > 0 else "not reproduced"


def claim_depth(found: dict[str, Results]) -> Claim:
    """Control against SM-G on the deep maze, and the depth sweep's solve-rate gaps;
    reproduced only when both parts hold."""
    text = "SM-G beats control on the deep maze, and the gap widens with depth."
    deep = claim_versus_control(
        found, "maze", lambda r: [d for d in r.domains if depth_of(d) >= 32], text)
    widens, gaps = gap_widens(found.get("depth"))
    holds, evidence = [], []
    if deep.status == "not tested":
        evidence.append("deep maze: not run")
    else:
        holds.append(weight(deep))
        evidence.append(f"deep maze ({deep.status}): {deep.evidence}")
    if widens is None:
        evidence.append("depth sweep: not run")
    else:
        holds.append(float(widens))
        evidence.append(f"depth sweep (gap {'widens' if widens else 'does not widen'}): "
                        + "; ".join(gaps))
    return Claim(text, combined(holds, 2), "; ".join(evidence), ("maze", "depth"))


def mean_effect(results: Results, network: str) -> float | None:
    """SM-G-SUM's and SM-G-ABS's mean rank effect A against control over the domains of
    `network` (None: no such comparison)."""
    effects = [test.effect for domain in results.domains if domain[1] == network
               for operator in ("SM-G-SUM", "SM-G-ABS")
               if (test := results.compare(domain, operator, "control")) is not None]
    return float(np.mean(effects)) if effects else None


def claim_pixels(found: dict[str, Results]) -> Claim:
    """SM-G against control per MinAtar game and network, and whether its advantage (mean A
    against control) is larger on the deep nets than on the shallow; reproduced only when
    both parts hold."""
    text = ("SM-G helps in domains that require processing raw pixels, more so for deeper "
            "nets (MinAtar in place of Atari).")
    helps = claim_versus_control(found, "minatar", lambda r: r.domains, text)
    if helps.status == "not tested":
        return helps
    shallow, deep = (mean_effect(found["minatar"], net) for net in ("shallow", "deep"))
    holds, evidence = [weight(helps)], [f"vs control ({helps.status}): {helps.evidence}"]
    if shallow is None or deep is None:
        evidence.append("deep vs shallow: not both run")
    else:
        holds.append(float(deep > shallow))
        evidence.append(f"mean A vs control: shallow {shallow:.2f}, deep {deep:.2f} "
                        f"({'larger' if deep > shallow else 'not larger'} for deep)")
    return Claim(text, combined(holds, 2), "; ".join(evidence), helps.sources)


def claim_sm_r(found: dict[str, Results]) -> Claim:
    """SM-G-SUM/ABS/SO against SM-R on every domain that has both."""
    text = "SM-R helps less than SM-G."
    sources = ("illustrative", "parity", "maze")
    compared = [c for name in sources if name in found
                for domain in found[name].domains
                for c in versus(found[name], domain, PAPER_SM_G, "SM-R", f"{name} ")]
    if not compared:
        return Claim(text, "not tested", "no experiment with both SM-R and SM-G runs", sources)
    wins, losses = tally(compared)
    status = ("reproduced" if 2 * wins >= len(compared) and not losses
              else "not reproduced" if losses >= wins else "partly")
    shown = [c for c in compared if significant(c)]
    return Claim(text, status, f"SM-G significantly better in {wins} and worse in {losses} of "
                               f"{len(compared)} comparisons (domain × SM-G operator)"
                               + (f": {evidence_of(shown)}" if shown else ""), sources)


def claims(found: dict[str, Results]) -> list[Claim]:
    """The paper's claims, in the report's order, with their verdicts on `found`."""
    parity = claim_versus_control(found, "parity", lambda r: r.domains,
                                  "SM-G beats control on recurrent parity.")
    gym = claim_versus_control(found, "gym", lambda r: r.domains,
                               "SM-G beats control on Gymnasium tasks (a public "
                               "re-implementation's claim for CartPole and LunarLander).")
    return [claim_washout(found), parity, claim_depth(found), claim_sm_r(found), gym,
            claim_pixels(found)]


CLAIM_RULES = (
    "Verdicts: a comparison counts when its two-sided Mann-Whitney U test gives p < 0.05 (no "
    "correction for multiple comparisons). *Washout*: SM-G-ABS and SM-G-SO each compared with"
    " SM-G-SUM on final fitness. *Parity*, *deep maze* and *Gymnasium tasks*: SM-G-SUM, SM-G-"
    "ABS and SM-G-SO (where run) each compared with control on evaluations to solve (unsolved"
    " runs rank below every solved run and, among themselves, by final fitness), per network "
    "or env (maze: depth ≥ 32). Reproduced when every comparison favours the paper's side, "
    "partly when more do than go against it, else not reproduced. *Gap widens*: for SM-G-SUM "
    "and SM-G-ABS, the solve-rate gap to control at the deepest depth exceeds the gap at the "
    "shallowest (each depth's A against control is shown beside it, but not used); the depth "
    "claim is reproduced only when both of its parts hold. Where no compared run solved, a "
    "verdict on evaluations to solve rests on final fitness alone and says so. *SM-R*: each "
    "of SM-G-SUM/ABS/SO against SM-R per domain (illustrative, parity, maze); reproduced when"
    " SM-G wins at least half the comparisons and loses none, not reproduced when it loses at"
    " least as many as it wins. *Pixels*: SM-G-SUM and SM-G-ABS each compared with control on "
    "the champions' reward on 100 fresh episodes per MinAtar game and network; *more so for "
    "deeper nets* holds when their mean A against control is larger on the deep nets than on "
    "the shallow; reproduced only when both parts hold. Each comparison ends with the two "
    "operators' median divergence per mutation (as in the magnitude table), where measured: "
    "an operator whose children barely move may lose for its step size, not its direction. "
    "A verdict marked *provisional* rests "
    "on experiments whose grid is not complete yet: it may change as their other runs come in."
)
