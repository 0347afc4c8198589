"""The report's figures, one function each, drawn with matplotlib's Agg canvas straight
onto a ``Figure`` (no pyplot, so the user's backend and figures are left alone) and
returned as PNG bytes.

Every function takes the run's facts and draws finished trials only: stopped and failed
trials have no score. Learners keep one colour across all figures.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from autofuse._report._facts import Combiner, RunFacts, pareto, running_best

#: Pixels per inch of the PNGs (the page shows them at about half that, so they stay
#: sharp on high-density screens).
DPI = 150
WIDTH = 7.5  # inches
#: The blend is drawn in black, which no learner gets.
BLEND = "#111111"
#: Prune's front, in a colour of its own.
PRUNE = "#8c2d8c"
#: Predict times under this many seconds are drawn at it (the axis is logarithmic).
MIN_SECONDS = 1e-4

_STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#dddddd", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "legend.frameon": False, "figure.facecolor": "white", "savefig.facecolor": "white",
    "axes.edgecolor": "#888888", "xtick.color": "#444444", "ytick.color": "#444444",
}


def learner_colours(learners: list[str]) -> dict[str, Any]:
    """A colour per learner, in the order given (best first)."""
    cmap = matplotlib.colormaps["tab10" if len(learners) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(learners)}


def history(facts: RunFacts) -> bytes:
    """Score of every finished trial by trial number, the best so far as a step line and
    the blend's (``facts.blend_compared``) as a horizontal line."""
    t = facts.trials
    colours = learner_colours(facts.learners)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for learner in facts.learners:
            rows = t[t["learner"] == learner]
            ax.scatter(rows["trial"], rows["score"], s=30, color=colours[learner],
                       edgecolors="white", linewidths=0.5, zorder=3, label=learner)
        best = running_best(t["score"], facts.greater_is_better)
        ax.step(t["trial"], best, where="post", color="#555555", linewidth=1.4, zorder=2,
                label="best so far")
        ax.axhline(facts.blend_compared, color=BLEND, linestyle="--", linewidth=1.3,
                   zorder=2, label=f"blend ({facts.combiner}, {facts.compared_as})")
        ax.set_xlabel("trial")
        ax.set_ylabel(_score_label(facts))
        if len(t):  # whole trial numbers only, even for one or two trials
            low, high = t["trial"].min(), t["trial"].max()
            pad = 0.5 if high - low >= 2 else 1.0
            ax.set_xlim(low - pad, high + pad)
        ax.margins(y=0.1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, height=3.8)


def by_learner(facts: RunFacts) -> bytes:
    """Per learner (best at the top), its finished trials' scores as dots over their range
    (thin line), middle half (thick bar) and median (white tick)."""
    t = facts.trials
    colours = learner_colours(facts.learners)
    n = len(facts.learners)
    jitter = np.random.default_rng(0)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for i, learner in enumerate(facts.learners):
            y = n - 1 - i
            scores = t.loc[t["learner"] == learner, "score"].to_numpy()
            low, q1, median, q3, high = np.percentile(scores, [0, 25, 50, 75, 100])
            colour = colours[learner]
            ax.hlines(y, low, high, color=colour, linewidth=1.2, alpha=0.7, zorder=2)
            ax.hlines(y, q1, q3, color=colour, linewidth=9, alpha=0.35, zorder=2)
            ax.plot([median], [y], marker="|", markersize=11, markeredgewidth=2,
                    color="white", zorder=3)
            offsets = jitter.uniform(-0.18, 0.18, size=scores.size) if scores.size > 1 else 0
            ax.scatter(scores, y + offsets, s=22, color=colour, edgecolors="white",
                       linewidths=0.5, zorder=4)
        ax.axvline(facts.blend_compared, color=BLEND, linestyle="--", linewidth=1.2,
                   label=f"blend ({facts.combiner}, {facts.compared_as})")
        ax.set_yticks(range(n))
        ax.set_yticklabels([f"{name} ({(t['learner'] == name).sum()})"
                            for name in reversed(facts.learners)])
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(_score_label(facts))
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0))

    return _render(draw, height=1.3 + 0.42 * max(n, 1))


def weights(facts: RunFacts) -> bytes:
    """The blend's weight on each member model, heaviest at the top."""
    members = facts.members
    known = set(facts.learners)
    colours = learner_colours(facts.learners + sorted({m.learner for m in members} - known))

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ys = range(len(members) - 1, -1, -1)
        bars = ax.barh(list(ys), [m.weight for m in members],
                       color=[colours[m.learner] for m in members], height=0.65)
        ax.bar_label(bars, labels=[f"{m.weight:.3g}" for m in members], padding=3)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([m.model for m in members])
        ax.set_xlim(0, max(m.weight for m in members) * 1.15)
        ax.set_xlabel("weight in the blend")
        ax.grid(axis="y", visible=False)

    return _render(draw, height=1.0 + 0.36 * len(members))


def latency(facts: RunFacts) -> bytes:
    """Score against seconds to predict 1,000 rows (log scale): every finished trial (its
    cross-validated score), the best single model (ringed), every combiner tried (its outer
    score; the blend's as a star), prune's front when prune was tried (in-sample scores,
    members' times summed, dotted), and the Pareto frontier of the trials and combiners as
    a step line."""
    t = facts.trials[np.isfinite(facts.trials["per_1000"])]
    colours = learner_colours(facts.learners)
    tried = [c for c in facts.combiners
             if c.status == "done" and math.isfinite(c.outer) and math.isfinite(c.per_1000)]
    front = sorted((p for p in facts.front
                    if math.isfinite(p.score) and math.isfinite(p.per_1000)),
                   key=lambda p: p.per_1000)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for learner in facts.learners:
            rows = t[t["learner"] == learner]
            ax.scatter(clip_seconds(rows["per_1000"]), rows["score"], s=30,
                       color=colours[learner], edgecolors="white", linewidths=0.5,
                       zorder=3, label=learner)
        best = t[t["model"] == facts.best_model]
        if len(best):
            x, y = clip_seconds(best["per_1000"])[0], best["score"].iloc[0]
            ax.scatter([x], [y], s=170, facecolors="none", edgecolors=BLEND, linewidths=1.4,
                       zorder=4, label="best single model")
            ax.annotate("best single", (x, y), xytext=(8, -12), textcoords="offset points")
        if front:
            ax.plot(clip_seconds([p.per_1000 for p in front]), [p.score for p in front],
                    linestyle=":", marker="s", markersize=5, markerfacecolor="white",
                    color=PRUNE, linewidth=1.2, zorder=4, label="prune's front (in sample)")
        points, labels = _combiner_points(ax, facts, tried)
        frontier = np.vstack([np.column_stack([t["per_1000"], t["score"]]), points])
        keep = pareto(frontier, facts.greater_is_better)
        if len(keep):
            x = clip_seconds(frontier[keep, 0])
            ax.step(np.append(x, clip_seconds(frontier[:, 0]).max()),
                    np.append(frontier[keep, 1], frontier[keep[-1], 1]), where="post",
                    color="#777777", linestyle="--", linewidth=1.1, zorder=2,
                    label="Pareto frontier")
        xs = np.concatenate([clip_seconds(t["per_1000"]), clip_seconds(points[:, 0]),
                             clip_seconds([p.per_1000 for p in front])])
        _seconds_axis(ax, xs)
        _name_points(ax, labels, xs)
        ax.margins(y=0.12)
        ax.set_xlabel("seconds to predict 1,000 rows (log scale)")
        ax.set_ylabel(f"{facts.metric} ({facts.direction})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, height=4.2)


_Label = tuple[str, float, float, bool]  # text, x, y, bold


def _combiner_points(ax: Any, facts: RunFacts,
                     tried: list[Combiner]) -> tuple[np.ndarray, list[_Label]]:
    """Draw each combiner at (seconds per 1,000 rows, outer score), the chosen one (the
    blend) as a star; a run without combiner rows gets the blend's star alone. Returns the
    points drawn, shape (n, 2), and their names to write beside them."""
    if not tried:
        if not (math.isfinite(facts.blend_per_1000) and math.isfinite(facts.blend_compared)):
            return np.empty((0, 2)), []
        score = facts.blend_compared
        x = clip_seconds([facts.blend_per_1000])[0]
        ax.scatter([x], [score], s=190, marker="*", color=BLEND, zorder=5,
                   label=f"blend ({facts.combiner})")
        return (np.array([[facts.blend_per_1000, score]]),
                [(f"blend ({facts.combiner})", x, score, True)])
    others = [c for c in tried if not c.chosen]
    if others:
        ax.scatter(clip_seconds([c.per_1000 for c in others]), [c.outer for c in others],
                   s=60, marker="D", color="white", edgecolors=BLEND, linewidths=1.3,
                   zorder=5, label="combiner (outer score)")
    labels = []
    for c in tried:
        x = clip_seconds([c.per_1000])[0]
        if c.chosen:
            ax.scatter([x], [c.outer], s=190, marker="*", color=BLEND, zorder=6,
                       label=f"blend ({c.name})")
        labels.append((f"blend ({c.name})" if c.chosen else c.name, x, c.outer, c.chosen))
    return np.array([[c.per_1000, c.outer] for c in tried]), labels


def _name_points(ax: Any, labels: list[_Label], xs: np.ndarray) -> None:
    """Write each label beside its point: on the right, or on the left for points in the
    right quarter of the (log) time range, so that no name runs off the plot."""
    xs = xs[np.isfinite(xs)]
    low, high = (np.log10(xs.min()), np.log10(xs.max())) if xs.size else (0.0, 0.0)
    for text, x, y, bold in labels:
        right = high - low > 0 and (np.log10(x) - low) / (high - low) > 0.75
        ax.annotate(text, (x, y), xytext=(-9 if right else 9, 0), textcoords="offset points",
                    ha="right" if right else "left", va="center",
                    fontweight="bold" if bold else "normal")


def _seconds_axis(ax: Any, seconds: np.ndarray) -> None:
    """A log axis labelled in plain seconds (0.05, 0.1, 0.2), with 1-2-5 steps over a
    narrow range and whole decades over a wide one."""
    seconds = seconds[np.isfinite(seconds)]
    ax.set_xscale("log")
    span = np.log10(seconds.max() / seconds.min()) if seconds.size else 0.0
    subs = (1.0, 2.0, 5.0) if span < 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def clip_seconds(seconds: Any) -> np.ndarray:
    """``seconds`` raised to at least ``MIN_SECONDS``, so a time of 0 fits a log axis."""
    return np.maximum(np.asarray(seconds, dtype=float), MIN_SECONDS)


def _score_label(facts: RunFacts) -> str:
    return f"{facts.metric}, cross-validated ({facts.direction})"


def _render(draw: Any, height: float) -> bytes:
    """Run ``draw(figure)`` on a fresh Agg figure and return the PNG. Styles apply inside
    ``rc_context``, which puts the user's settings back afterwards."""
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
        canvas = FigureCanvasAgg(fig)
        draw(fig)
        buffer = io.BytesIO()
        canvas.print_png(buffer)
    return buffer.getvalue()
