"""Benchmark the stress test, the waterfall and the break-even search: vectorised against a per-run loop.

Run:  python benchmarks/bench_stress.py [--runs 100000] [--repeat 3]
Writes benchmarks/results-stress.md. Goals: the stress test at 100,000 runs × 10 years in ≤ 2 s
(issue 6); the waterfall and every break-even search at 100,000 runs × 10 years in ≤ 10 s each
(issue 19). The per-run Python loop (viability.projection, the exact reference) is timed on a
sample of runs and scaled, doing the same work: the same switch settings for the waterfall, the
same number of evaluations as the vectorised solver made for a break-even.
"""

from __future__ import annotations

import argparse
from datetime import date
from itertools import combinations
from pathlib import Path

from carecontract.terms import load_terms
from carecontract.viability.causes import waterfall
from carecontract.viability.levers import CONTINUOUS, Evaluator, solve_lever, term_length, vat_treatment
from carecontract.viability.projection import cumulative, project
from carecontract.viability.simulate import CAUSES, Levers, draw, resolve_inputs, simulate, stress, summarise
from timing import best_of, write_results

HERE = Path(__file__).parent
CANCER = HERE.parent / "contracts" / "staffordshire-cancer.yaml"


def best(fn, repeat: int) -> float:
    return best_of(fn, repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300, help="runs the per-run loop is timed on")
    parser.add_argument("--out", type=Path, default=HERE / "results-stress.md")
    args = parser.parse_args()
    contract = load_terms(CANCER).contract
    inputs = resolve_inputs(contract)
    years = len(inputs.years)
    draws = draw(inputs, args.runs, 1)

    def vectorised() -> None:
        summarise(inputs, simulate(inputs, draw(inputs, args.runs, 1)))

    t_vec = best(vectorised, args.repeat)
    t_full = best(lambda: stress(contract, args.runs, 1), args.repeat)
    sample = args.sample
    small = draw(inputs, sample, 1)
    rows = [{k: (v[r].tolist() if v.shape[1] > 1 else float(v[r, 0])) for k, v in small.items()} for r in range(sample)]
    scale = args.runs / sample
    t_loop = best(lambda: [project(inputs, row) for row in rows], 1) * scale

    # the waterfall: 2^8 switch settings on every run
    t_water = best(lambda: waterfall(inputs, draws, "shapley"), args.repeat)
    settings = [frozenset(CAUSES) - frozenset(s) for k in range(len(CAUSES) + 1) for s in combinations(CAUSES, k)]
    few = rows[: max(1, sample // 10)]

    def loop_waterfall() -> None:
        for off in settings:
            for row in few:
                min(cumulative(project(inputs, row, off)))

    t_water_loop = best(loop_waterfall, 1) * args.runs / len(few)

    # break-even: each lever's search, and the per-run loop doing the same number of evaluations
    lever_rows = []
    for spec in CONTINUOUS:
        evaluator = Evaluator(inputs, draws)
        t = best(lambda spec=spec, evaluator=evaluator: solve_lever(evaluator, spec), 1)
        calls = evaluator.calls
        levers = Levers(**{spec.field: spec.low})
        t_one = best(lambda levers=levers: [min(cumulative(project(inputs, r, levers=levers))) for r in rows], 1)
        lever_rows.append((spec.name, t, calls, t_one * scale * calls))
    for name, fn in (("vat_treatment", vat_treatment), ("term_years", term_length)):
        evaluator = Evaluator(inputs, draws)
        t = best(lambda fn=fn, evaluator=evaluator: fn(evaluator), 1)
        lever_rows.append((name, t, evaluator.calls, t_loop * evaluator.calls))

    lines = [
        "# Stress-test benchmark",
        "",
        f"{args.runs:,} runs × {years} years of the Staffordshire cancer contract; best of {args.repeat} "
        "(the searches: one run each). The per-run Python loop is timed on "
        f"{sample:,} runs (the waterfall's on {len(few):,}) and scaled to {args.runs:,}.",
        "",
        "| what | vectorised s | per-run loop s (scaled) | loop ÷ vectorised |",
        "|---|---:|---:|---:|",
        f"| stress: draw, simulate, summarise | {t_vec:.3f} | {t_loop:.2f} | {t_loop / t_vec:.0f}× |",
        f"| the whole `stress` (plus sensitivity, {len(inputs.risks)} risks × 2) | {t_full:.3f} | | |",
        f"| waterfall, Shapley over {len(settings)} switch settings | {t_water:.2f} | {t_water_loop:.0f} | "
        f"{t_water_loop / t_water:.0f}× |",
    ]
    for name, t, calls, t_l in lever_rows:
        lines.append(f"| break-even `{name}` ({calls} evaluations) | {t:.2f} | {t_l:.0f} | {t_l / t:.0f}× |")
    lines += [
        "",
        f"Measured {date.today().isoformat()} by `python benchmarks/bench_stress.py` on a 2-core machine shared "
        "with four other helpers' work at the time, so absolute seconds are loaded figures; the ratios are "
        "measured in the same run. Goals: stress ≤ 2 s; waterfall and each break-even search ≤ 10 s.",
    ]
    write_results(lines, args.out)


if __name__ == "__main__":
    main()
