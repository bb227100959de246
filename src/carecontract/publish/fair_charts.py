"""The report's fair-comparison charts: an adjusted funnel plot and a Making Data Count SPC chart.

Why its own module: the report module owns layout; these two charts carry their own statistics
(limits widened for overdispersion; XmR process limits and special causes), each line labelled on
the chart itself as well as in the legend, so a commissioner can read them without the methods.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import plotly.graph_objects as go

from carecontract.measures import funnel as funnel_stats
from carecontract.measures import standards
from carecontract.measures.definitions import measures
from carecontract.measures.fair import adjusted, spc_chart
from carecontract.measures.spc import SpcChart

#: The adjusted measure drawn as a funnel by provider, and the measure drawn as an SPC chart.
FUNNEL_ADJUSTED = "early_stage"
SPC_MEASURE = "cwt_62"


def gather(run: Any, start: date, end: date, targets: dict[str, float]) -> dict[str, Any]:
    """The rows and chart the report draws: ``adjusted`` (O/E by provider) and ``spc`` (an SpcChart)."""
    src = run.sources(detail=True)
    out: dict[str, Any] = {"adjusted": adjusted(src, start, end, ("provider",), [FUNNEL_ADJUSTED])}
    target = targets.get(SPC_MEASURE, standards.standard(SPC_MEASURE, end))
    try:
        out["spc"] = spc_chart(src, SPC_MEASURE, start, end, target)
    except ValueError:  # no cases in the period: no chart
        out["spc"] = None
    # the adjusted measure's chart on its case-mix adjusted rate: a month of older or later-diagnosed
    # patients is not read as a change in care
    adjusted_target = targets.get(FUNNEL_ADJUSTED, standards.standard(FUNNEL_ADJUSTED, end))
    try:
        out["spc_adjusted"] = spc_chart(src, FUNNEL_ADJUSTED, start, end, adjusted_target, adjusted=True)
    except ValueError:
        out["spc_adjusted"] = None
    return out


def _label_line(fig: go.Figure, x: float, y: float, text: str) -> None:
    fig.add_annotation(x=x, y=y, text=text, showarrow=False, xanchor="left", font={"size": 10, "color": "#555"})


def adjusted_funnel(rows: list[dict[str, Any]]) -> go.Figure | None:
    """O/E by provider against expected cases, with 95% and 99.8% limits widened for overdispersion."""
    rows = [r for r in rows if r["expected"] and r["ratio"] is not None]
    if not rows:
        return None
    plot = funnel_stats.funnel([(r["provider"], r["observed"], r["expected"]) for r in rows], kind="ratio")
    measure = rows[0]["measure"]
    fig = go.Figure(
        go.Scatter(
            x=[r["expected"] for r in rows],
            y=[r["ratio"] for r in rows],
            mode="markers+text",
            text=[r["provider"] + (" (outlier)" if p.outlier else "") for r, p in zip(rows, plot.points, strict=True)],
            textposition="top center",
            name="providers (observed / expected)",
        )
    )
    top = max(r["expected"] for r in rows) * 1.2
    xs = [top * i / 100 for i in range(2, 101)]
    fig.add_trace(
        go.Scatter(x=[xs[0], xs[-1]], y=[1, 1], mode="lines", name="as expected (1.0)", line={"color": "#333"})
    )
    for attr, dash, label in (("95", "dash", "95% limits"), ("998", "dot", "99.8% limits")):
        limits = [plot.limits_at(x) for x in xs]
        for side in ("low", "high"):
            ys = [getattr(lim, f"{side}{attr}") for lim in limits]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"dash": dash, "color": "#888"},
                    name=label,
                    legendgroup=label,
                    showlegend=side == "low",
                )
            )
            _label_line(fig, xs[-1], ys[-1], label)
    note = f"overdispersion: φ = {plot.phi:.2f}, τ² = {plot.tau2:.4f}" if plot.overdispersed else "no overdispersion"
    fig.update_layout(
        title=f"{measure}: case-mix adjusted funnel plot by provider ({note})",
        xaxis_title="expected cases (for these patients at the whole store's rates)",
        yaxis_title="observed / expected",
        legend_title_text="",
    )
    return fig


def spc_figure(chart: SpcChart, measure: str, adjusted: bool = False) -> go.Figure | None:
    """The XmR chart: monthly values, mean, process limits, target, special-cause points coloured;
    ``adjusted``: of the case-mix adjusted rate, and titled so."""
    if chart is None or not chart.points:
        return None
    xs = [p.period for p in chart.points]
    colour = {"special_cause_improvement": "#1f77b4", "special_cause_concern": "#e37222"}
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=[p.value for p in chart.points],
            mode="lines+markers",
            marker={"color": [colour.get(p.point_type, "#7f7f7f") for p in chart.points], "size": 8},
            line={"color": "#bbb"},
            name=f"monthly {'adjusted ' if adjusted else ''}rate (blue: improvement, orange: concern)",
        )
    )
    for attr, label, dash in (
        ("mean", "mean", "solid"),
        ("lpl", "lower process limit", "dash"),
        ("upl", "upper process limit", "dash"),
    ):
        ys = [getattr(p, attr) for p in chart.points]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=label, line={"dash": dash, "color": "#555"}))
        _label_line(fig, xs[-1], ys[-1], label)
    score = measures()[measure].kind == "mean"  # a mean score is shown as a score, a rate as a percentage
    if chart.target is not None:
        shown = f"{chart.target:.2f}" if score else f"{chart.target:.0%}"
        fig.add_hline(y=chart.target, line={"color": "#b00", "width": 1}, annotation_text=f"target {shown}")
    assurance = f"; assurance: {chart.assurance.replace('_', ' ')}" if chart.assurance else ""
    basis = " of the case-mix adjusted rate" if adjusted else ""
    variation = chart.variation.replace("_", " ")
    fig.update_layout(
        title=f"{measure}: Making Data Count XmR chart{basis} (variation: {variation}{assurance})",
        xaxis_title="month",
        yaxis_title="mean score" if score else ("case-mix adjusted rate, %" if adjusted else "rate, %"),
        yaxis={"tickformat": ".2f" if score else ".0%"},
        legend_title_text="",
    )
    return fig


def figures(fair: dict[str, Any]) -> dict[str, go.Figure]:
    """The charts by element id (none when the report has no fair-comparison data, e.g. public)."""
    out: dict[str, go.Figure] = {}
    if fair.get("adjusted"):
        fig = adjusted_funnel(fair["adjusted"])
        if fig is not None:
            out[f"funnel-{FUNNEL_ADJUSTED}-oe"] = fig
    if fair.get("spc") is not None:
        fig = spc_figure(fair["spc"], SPC_MEASURE)
        if fig is not None:
            out[f"spc-{SPC_MEASURE}"] = fig
    if fair.get("spc_adjusted") is not None:
        fig = spc_figure(fair["spc_adjusted"], FUNNEL_ADJUSTED, adjusted=True)
        if fig is not None:
            out[f"spc-{FUNNEL_ADJUSTED}-adjusted"] = fig
    return out
