"""Benchmark the stress test: 100,000 runs × 10 years, vectorised, against a per-run Python loop.

Run:  python benchmarks/bench_stress.py [--runs 100000] [--repeat 3]
Writes benchmarks/results-stress.md. The issue's goal: 100,000 runs × 10 years in ≤ 2 s.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from carecontract.terms import load_terms
from carecontract.viability.projection import project
from carecontract.viability.simulate import draw, resolve_inputs, simulate, stress, summarise
from timing import best_of, write_results

HERE = Path(__file__).parent
CANCER = HERE.parent / "contracts" / "staffordshire-cancer.yaml"


def best(fn, repeat: int) -> float:
    return best_of(fn, repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results-stress.md")
    args = parser.parse_args()
    contract = load_terms(CANCER).contract
    inputs = resolve_inputs(contract)
    years = len(inputs.years)

    def vectorised() -> None:
        summarise(inputs, simulate(inputs, draw(inputs, args.runs, 1)))

    t_vec = best(vectorised, args.repeat)
    t_full = best(lambda: stress(contract, args.runs, 1), args.repeat)
    sample = 2_000
    draws = draw(inputs, sample, 1)
    rows = [{k: (v[r].tolist() if v.shape[1] > 1 else float(v[r, 0])) for k, v in draws.items()} for r in range(sample)]
    t_loop = best(lambda: [project(inputs, row) for row in rows], 1) * args.runs / sample
    lines = [
        "# Stress-test benchmark",
        "",
        f"{args.runs:,} runs × {years} years of the Staffordshire cancer contract; best of {args.repeat}.",
        "",
        "| implementation | seconds | runs/s | ratio to vectorised |",
        "|---|---:|---:|---:|",
        f"| vectorised NumPy (draw, simulate, summarise) | {t_vec:.3f} | {args.runs / t_vec:,.0f} | 1.0× |",
        f"| the whole `stress` (plus sensitivity, {len(inputs.risks)} risks × 2) | {t_full:.3f} | "
        f"{args.runs / t_full:,.0f} | {t_full / t_vec:.1f}× |",
        f"| per-run Python loop (measured on {sample:,} runs, scaled) | {t_loop:.2f} | {args.runs / t_loop:,.0f} | "
        f"{t_loop / t_vec:.0f}× |",
        "",
        f"Measured {date.today().isoformat()} by `python benchmarks/bench_stress.py`; the goal is ≤ 2 s.",
    ]
    write_results(lines, args.out)


if __name__ == "__main__":
    main()
