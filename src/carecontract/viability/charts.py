"""Fan chart of the cumulative position and tornado chart of the drivers, as HTML and PNG.

HTML uses Plotly with its JavaScript inlined, so the file opens offline; PNG uses matplotlib,
which needs no browser (Plotly's PNG export needs a Chrome download, which is not available here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BANDS = ((0.05, 0.95), (0.25, 0.75))


def fan_figure(title: str, years: list[int], cumulative: np.ndarray):
    """The fan chart: bands of the cumulative position over the runs, its median and zero."""
    import plotly.graph_objects as go

    fig = go.Figure()
    millions = cumulative / 1e6
    for low, high in BANDS:
        lo, hi = np.quantile(millions, low, axis=0), np.quantile(millions, high, axis=0)
        fig.add_trace(
            go.Scatter(
                x=years + years[::-1],
                y=list(hi) + list(lo[::-1]),
                fill="toself",
                line={"width": 0},
                name=f"{low:.0%}–{high:.0%} of runs",
                opacity=0.35,
            )
        )
    fig.add_trace(go.Scatter(x=years, y=np.median(millions, axis=0), name="median", line={"width": 3}))
    fig.add_hline(y=0, line_dash="dash")
    fig.update_layout(title=title, xaxis_title="contract year", yaxis_title="cumulative surplus (+) / deficit (−), £m")
    return fig


def fan_html(title: str, years: list[int], cumulative: np.ndarray, path: Path) -> Path:
    fan_figure(title, years, cumulative).write_html(path, include_plotlyjs=True)
    return path


def fan_png(title: str, years: list[int], cumulative: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    millions = cumulative / 1e6
    fig, ax = plt.subplots(figsize=(9, 5))
    for (low, high), alpha in zip(BANDS, (0.2, 0.4), strict=True):
        ax.fill_between(
            years,
            np.quantile(millions, low, axis=0),
            np.quantile(millions, high, axis=0),
            alpha=alpha,
            color="tab:blue",
            label=f"{low:.0%}–{high:.0%} of runs",
        )
    ax.plot(years, np.median(millions, axis=0), color="tab:blue", linewidth=2.5, label="median")
    ax.axhline(0, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(years)
    ax.set(
        title=title, xlabel="contract year (by the year it starts)", ylabel="cumulative surplus (+) / deficit (−), £m"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tornado_figure(title: str, rows: list[dict[str, Any]], base: float):
    """The tornado chart: the expected gap with each risk at its 10th and 90th percentile."""
    import plotly.graph_objects as go

    rows = rows[::-1]
    names = [r["parameter"] for r in rows]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=names,
            x=[(r["low"] - base) / 1e6 for r in rows],
            base=base / 1e6,
            orientation="h",
            name="risk at its 10th percentile",
        )
    )
    fig.add_trace(
        go.Bar(
            y=names,
            x=[(r["high"] - base) / 1e6 for r in rows],
            base=base / 1e6,
            orientation="h",
            name="risk at its 90th percentile",
        )
    )
    fig.update_layout(title=title, barmode="overlay", xaxis_title="expected funding gap, £m")
    return fig


def tornado_html(title: str, rows: list[dict[str, Any]], base: float, path: Path) -> Path:
    tornado_figure(title, rows, base).write_html(path, include_plotlyjs=True)
    return path


def tornado_png(title: str, rows: list[dict[str, Any]], base: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.5))
    y = np.arange(len(rows))
    ax.barh(y, [(r["low"] - base) / 1e6 for r in rows], left=base / 1e6, color="tab:green", label="10th percentile")
    ax.barh(
        y,
        [(r["high"] - base) / 1e6 for r in rows],
        left=base / 1e6,
        color="tab:red",
        alpha=0.7,
        label="90th percentile",
    )
    ax.axvline(base / 1e6, color="black", linewidth=1)
    ax.set_yticks(y, [r["parameter"] for r in rows])
    ax.set(title=title, xlabel="expected funding gap, £m")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_charts(name: str, summary: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    years = [y["year"] for y in summary["by_year"]]
    cumulative = summary["_cumulative"]
    base = summary["expected_gap_gbp"]
    fan_title = f"{name}: cumulative position over {summary['runs']:,} runs"
    tornado_title = f"{name}: what drives the funding gap"
    paths = [
        fan_html(fan_title, years, cumulative, out / "fan.html"),
        fan_png(fan_title, years, cumulative, out / "fan.png"),
    ]
    if summary["sensitivity"]:
        paths += [
            tornado_html(tornado_title, summary["sensitivity"], base, out / "tornado.html"),
            tornado_png(tornado_title, summary["sensitivity"], base, out / "tornado.png"),
        ]
    return paths


def _scale(low: float, high: float, width: int):
    span = (high - low) or 1.0
    return lambda v: max(0, min(width - 1, round((v - low) / span * (width - 1))))


def terminal_fan(summary: dict[str, Any], width: int = 50) -> list[str]:
    """The fan chart as text: each year's 10–90% band of the cumulative position, its median (●), zero (│)."""
    rows = summary["by_year"]
    low = min(0.0, *(r["cumulative_p10_gbp"] for r in rows))
    high = max(0.0, *(r["cumulative_p90_gbp"] for r in rows))
    at = _scale(low, high, width)
    lines = [f"cumulative position, 10–90% of runs, £m: {low / 1e6:,.0f} … {high / 1e6:,.0f}"]
    for r in rows:
        bar = [" "] * width
        for i in range(at(r["cumulative_p10_gbp"]), at(r["cumulative_p90_gbp"]) + 1):
            bar[i] = "━"
        bar[at(0.0)] = "│"
        bar[at(r["cumulative_p50_gbp"])] = "●"
        lines.append(f"{r['year']}  {''.join(bar)}  {r['cumulative_p50_gbp'] / 1e6:>8,.1f}")
    return lines


def terminal_tornado(summary: dict[str, Any], width: int = 40) -> list[str]:
    """The tornado chart as text: expected gap with each risk at its 10th (◀) and 90th (▶) percentile."""
    rows = summary["sensitivity"]
    if not rows:
        return []
    base = summary["expected_gap_gbp"]
    low = min(base, *(min(r["low"], r["high"]) for r in rows))
    high = max(base, *(max(r["low"], r["high"]) for r in rows))
    at = _scale(low, high, width)
    name_width = max(len(r["parameter"]) for r in rows)
    lines = [f"expected funding gap, £m: {low / 1e6:,.0f} … {high / 1e6:,.0f} (│ = {base / 1e6:,.1f})"]
    for r in rows:
        bar = [" "] * width
        a, b = sorted((at(r["low"]), at(r["high"])))
        for i in range(a, b + 1):
            bar[i] = "█"
        bar[at(r["low"])] = "◀"
        bar[at(r["high"])] = "▶"
        bar[at(base)] = "│" if bar[at(base)] == " " else bar[at(base)]
        lines.append(f"{r['parameter']:<{name_width}}  {''.join(bar)}")
    return lines


def waterfall_figure(title: str, result: dict[str, Any]):
    """The waterfall: base, each cause's contribution, the total expected funding gap (£m)."""
    import plotly.graph_objects as go

    causes = result["contributions"]
    fig = go.Figure(
        go.Waterfall(
            x=["base (price vs first-year cost)", *[c["cause"] for c in causes], "expected funding gap"],
            measure=["absolute", *["relative"] * len(causes), "total"],
            y=[result["base_gbp"] / 1e6, *[c["gbp"] / 1e6 for c in causes], result["total_gbp"] / 1e6],
        )
    )
    fig.update_layout(title=title, yaxis_title="£m", showlegend=False)
    return fig


def waterfall_png(title: str, result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    causes = result["contributions"]
    names = ["base", *[c["cause"] for c in causes], "total"]
    steps = [c["gbp"] / 1e6 for c in causes]
    bottoms, heights, level = [0.0], [result["base_gbp"] / 1e6], result["base_gbp"] / 1e6
    for step in steps:
        bottoms.append(level if step >= 0 else level + step)
        heights.append(abs(step))
        level += step
    bottoms.append(0.0)
    heights.append(result["total_gbp"] / 1e6)
    colours = ["grey", *["tab:red" if s >= 0 else "tab:green" for s in steps], "black"]
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.bar(range(len(names)), heights, bottom=bottoms, color=colours)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set(title=title, ylabel="expected funding gap, £m")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def options_figure(rows: list[Any]):
    """Options side by side: deficit probability (bars, left) and expected / P90 gap (markers, right)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = [r.label for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("probability of a deficit", "funding gap, £m"))
    fig.add_trace(go.Bar(x=labels, y=[r.deficit_probability for r in rows], name="P(deficit)"), row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=[r.expected_gap_gbp / 1e6 for r in rows], name="expected gap"), row=1, col=2)
    fig.add_trace(go.Bar(x=labels, y=[r.gap_p90_gbp / 1e6 for r in rows], name="90th percentile"), row=1, col=2)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=1)
    fig.update_layout(title="Options side by side", barmode="group")
    return fig


def options_html(rows: list[Any], path: Path) -> Path:
    options_figure(rows).write_html(path, include_plotlyjs=True)
    return path


def options_png(rows: list[Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.label for r in rows]
    x = np.arange(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.bar(x, [r.deficit_probability for r in rows], color="tab:red")
    left.set_xticks(x, labels, rotation=30, ha="right")
    left.set(title="probability of a deficit", ylim=(0, 1))
    right.bar(x - 0.2, [r.expected_gap_gbp / 1e6 for r in rows], width=0.4, label="expected")
    right.bar(x + 0.2, [r.gap_p90_gbp / 1e6 for r in rows], width=0.4, label="90th percentile")
    right.set_xticks(x, labels, rotation=30, ha="right")
    right.set(title="funding gap, £m")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
