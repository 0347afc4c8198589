"""The report page: one HTML document with its style sheet inline and its figures as data
URIs, so it opens anywhere, offline, and loads nothing. It runs no script; a
Content-Security-Policy tells the browser to refuse anything but inline styles and data
images, should a later edit ever reference something outside the file."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from autofuse._report import _html as h
from autofuse._report._facts import RunFacts

#: Trials shown in the leaderboard table, after the blend, best single and combiner rows.
TOP_TRIALS = 20
#: Longer tables start folded.
FOLD_ROWS = 25

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_SECTIONS = (("summary", "Summary"), ("history", "Optimisation history"),
             ("learners", "Score by learner"), ("blend", "The blend"),
             ("combiners", "Combiners compared"), ("latency", "Score and predict time"),
             ("leaderboard", "Leaderboard"),
             ("data", "Data summary"), ("configuration", "Configuration"),
             ("fingerprint", "Data fingerprint"), ("calls", "Calls"),
             ("versions", "Versions"))


def render(facts: RunFacts, figures: dict[str, bytes]) -> str:
    """The whole page. ``figures`` maps "history", "learners", "weights" and "latency" to
    PNG bytes; "weights" may be missing (no member weights were recorded)."""
    version = facts.record.get("versions", {}).get("autofuse", "")
    nav = "".join(f'<a href="#{key}">{h.text(title)}</a>' for key, title in _SECTIONS)
    body = "".join([
        _header(facts), f"<nav>{nav}</nav>", _summary(facts),
        _history(facts, figures["history"]), _learners(facts, figures["learners"]),
        _blend(facts, figures.get("weights")), _combiners(facts),
        _latency(facts, figures["latency"]),
        _leaderboard(facts), _data(facts), _configuration(facts), _fingerprint(facts),
        _calls(facts), _versions(facts),
        f"<footer>Written by autofuse {h.text(version)} from {h.text(facts.path)}"
        "/run.json and leaderboard.csv.</footer>",
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>autofuse report: {h.text(facts.name)}</title>"
            f"<style>{h.CSS}</style></head>\n<body><main>{body}</main></body></html>\n")


def _section(key: str, intro: str, content: str) -> str:
    title = dict(_SECTIONS)[key]
    lead = f"<p>{intro}</p>" if intro else ""
    return f'<section id="{key}"><h2>{h.text(title)}</h2>{lead}{content}</section>'


def _header(f: RunFacts) -> str:
    created = f.record.get("created", "")
    return (f"<header><h1>autofuse report: {h.text(f.name)}</h1>"
            f"<p>Run folder {h.text(f.path)}, created {h.text(created)}.</p></header>")


def _card(label: str, value: str, detail: str = "", cls: str = "") -> str:
    value_cls = f"value {cls}".strip()
    extra = f'<div class="detail">{detail}</div>' if detail else ""
    return (f'<div class="card"><div class="label">{h.text(label)}</div>'
            f'<div class="{value_cls}">{value}</div>{extra}</div>')


def _summary(f: RunFacts) -> str:
    result = f.result
    trials = result.get("trials", {})
    classes = result.get("classes")
    task_detail = (f"{len(classes)} classes: " + h.text(", ".join(map(str, classes[:10])))
                   + ("&hellip;" if len(classes) > 10 else "")) if classes else ""
    if math.isfinite(f.gain):
        word = "better" if f.gain > 0 else "worse" if f.gain < 0 else "the same"
        cls = "good" if f.gain > 0 else "bad" if f.gain < 0 else ""
        relative = (f" ({abs(f.gain) / abs(f.best_score):.2%} {word})"
                    if f.best_score and math.isfinite(f.best_score) else f" ({word})")
        gain = f"{f.gain:+.4g}"
    else:
        gain, relative, cls = "–", "", ""
    runs = f.record.get("runs", [])
    wall = sum(float(r.get("seconds") or 0) for r in runs)
    cards = [
        _card("Target", h.text(f.record.get("config", {}).get("target", ""))),
        _card("Task", h.text(f.task), task_detail),
        _card("Metric", h.text(f.metric), h.text(f.direction)),
        _card("Blend", h.text(h.number(f.blend_compared)),
              f"{h.text(f.combiner)}, {len(f.members)} model"
              f"{'' if len(f.members) == 1 else 's'}; "
              + (f"outer score (nested cross-validation); {h.number(f.blend_score)} in "
                 "sample" if f.compared_as == "outer" else "in sample")),
        _card("Best single model", h.text(h.number(f.best_score)),
              f"{h.text(f.best_model)}, cross-validated"),
        _card("What fusion bought", h.text(gain),
              h.text(f"blend ({f.compared_as}) vs best single{relative}; positive is "
                     "better"), cls),
        _card("Trials", h.text(f"{trials.get('done', 0)} done"),
              h.text(f"{trials.get('stopped', 0)} stopped, {trials.get('failed', 0)} failed")),
        _card("Fit time", h.text(h.seconds(wall)),
              h.text(f"over {len(runs)} call{'' if len(runs) == 1 else 's'}; "
                     f"{'fusing' if _made_by(runs) == 'fuse' else 'the fit of'} this model "
                     f"took {h.seconds(result.get('fit_seconds'))}")),
    ]
    note = (f'<p class="note">The combiner says: {h.text(f.combiner_note)}</p>'
            if f.combiner_note else "")
    return _section("summary", "", f'<div class="cards">{"".join(cards)}</div>{note}')


def _made_by(runs: list[dict[str, Any]]) -> str:
    """The command of the last call that finished ("fit" or "fuse"): the one that made
    the run's model."""
    done = [r for r in runs if r.get("status") == "done"]
    return str(done[-1].get("command", "fit")) if done else "fit"


def _history(f: RunFacts, png: bytes) -> str:
    n = len(f.trials)
    alt = (f"Scatter plot of the cross-validated {f.metric} of {n} finished trial"
           f"{'' if n == 1 else 's'} by trial number, coloured by learner, with the best "
           f"score so far as a step line and the blend's {f.compared_as} score "
           f"({h.number(f.blend_compared)}) as a dashed line.")
    caption = (f"Cross-validated {h.text(f.metric)} ({h.text(f.direction)}) of every "
               "finished trial, by trial number and coloured by learner. The grey step line "
               f"is the best single score so far; the dashed line is the blend's "
               f"{_compared(f)}. Stopped and failed trials have no score and are not drawn.")
    return _section("history", "", h.figure(png, alt, caption))


def _compared(f: RunFacts) -> str:
    """What the blend's line in the figures is."""
    if f.compared_as == "outer":
        return ("outer score (nested cross-validation: rows its combiner was not fitted "
                "on, as a trial's score is out of fold)")
    return "in-sample score (this run.json records no outer score)"


def _learners(f: RunFacts, png: bytes) -> str:
    alt = (f"Per-learner distribution of the cross-validated {f.metric} of finished trials, "
           f"best learner first: {', '.join(f.learners)}.")
    caption = ("Each learner's finished trials (dots, their number in brackets), sorted by "
               "its best score, best at the top. The thin line spans all its scores, the "
               "thick bar the middle half, the white tick is the median; the dashed line is "
               f"the blend's {_compared(f)}.")
    return _section("learners", "", h.figure(png, alt, caption))


def _blend(f: RunFacts, png: bytes | None) -> str:
    if not f.members:
        return _section("blend", "", '<p class="note">This run records no member weights '
                        "(neither run.json nor leaderboard.csv names them).</p>")
    listing = ", ".join(f"{m.model} {m.weight:.3g}" for m in f.members)
    alt = f"Horizontal bar chart of the blend's weights: {listing}."
    caption = (f"The weight of each model in the {h.text(f.combiner)} blend, heaviest at "
               "the top, coloured by learner.")
    source = ("" if f.members_from == "run.json" else
              '<p class="note">run.json names no members; these are the models with a '
              "weight in leaderboard.csv.</p>")
    rows = [(m.model, m.learner, m.weight, m.predict_seconds) for m in f.members]
    listing_table = h.table(("model", "learner", "weight", "predict seconds"), rows,
                            numeric=(2, 3))
    figure = h.figure(png, alt, caption) if png else ""
    return _section("blend", "", source + figure + listing_table)


def _combiners(f: RunFacts) -> str:
    if not f.combiners:
        return _section("combiners", "", '<p class="note">This run\'s leaderboard has no '
                        "combiner rows (it was written before autofuse recorded them).</p>")
    intro = (f"Every combiner tried on the run's model library. The in-sample "
             f"{h.text(f.metric)} is the fusion's score on the out-of-fold predictions it "
             "was fitted on (it flatters a combiner that fits much, stacking most); the "
             "outer score comes from nested cross-validation, on rows the combiner was not "
             "fitted on. The chosen one (the blend) is marked. Another combiner: "
             f"<code>autofuse fuse {h.text(f.path)} --combiner NAME</code>.")
    headers = ("combiner", f"{f.metric} in sample", "outer", "members", "bytes",
               "predict s / 1,000 rows", "fit s", "status", "reason", "details")
    rows = [(h.Raw(f"<strong>{h.text(c.name)}</strong> &#9733; chosen") if c.chosen
             else c.name, c.score, c.outer, _count(c.members), _size(c.bytes), c.per_1000,
             c.fit_seconds, c.status, c.reason, _details(c.params))
            for c in f.combiners]
    classes = ["summary-row" if c.chosen else "" if c.status == "done" else "muted"
               for c in f.combiners]
    return _section("combiners", intro, h.table(headers, rows, classes,
                                                numeric=(1, 2, 3, 4, 5, 6)))


def _count(value: float) -> Any:
    return int(value) if math.isfinite(value) else value


def _size(value: float) -> str:
    """Bytes as B, kB, MB or GB (powers of 1,000)."""
    if not math.isfinite(value):
        return "–"
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.3g} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1000
    return f"{value:.3g} GB"


def _details(params: dict[str, Any]) -> h.Raw:
    """A combiner's summary as short ``key: value`` lines (numbers to 4 significant
    digits), prune's front shortened to its number of points (the figure below draws it)."""
    def short(key: str, value: Any) -> str:
        if key == "front" and isinstance(value, list):
            return f"{len(value)} points (drawn below)"
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, dict):
            return ", ".join(f"{k} {short(k, v)}" for k, v in value.items())
        if isinstance(value, list) and len(value) > 6:
            return f"{len(value)} values"
        return json.dumps(value) if isinstance(value, (list, bool)) or value is None \
            else str(value)

    lines = [f"{h.text(k)}: {h.text(short(k, v))}" for k, v in params.items()]
    return h.Raw("<br>".join(lines))


def _latency(f: RunFacts, png: bytes) -> str:
    names = ", ".join(c.name for c in f.combiners) or f.combiner
    front = [p for p in f.front if math.isfinite(p.score) and math.isfinite(p.per_1000)]
    alt = (f"Scatter plot of {f.metric} against seconds to predict 1,000 rows (log scale): "
           f"every finished trial by its cross-validated score, the best single model "
           f"{f.best_model} ringed, the combiners ({names}) by their outer scores with the "
           f"blend ({f.combiner}) as a star at {h.seconds(f.blend_per_1000)}"
           + (f", prune's front of {len(front)} blends" if front else "")
           + ", and the Pareto frontier as a dashed step line.")
    caption = ("Score against the seconds to predict 1,000 rows (log scale), a model's cost "
               "at prediction time as the fused model pays it (every fold model "
               "predicting), estimated from the search's timings for every point alike (prune's "
               "own measurements, on batches of 1 and 10,000 rows, are in its details; a "
               "distilled student or a soup, which predicts with a model of its own, is "
               "measured at a batch of 10,000 rows). "
               "Trials (coloured by learner) are placed by their "
               "cross-validated score, combiners (diamonds; the blend a star) by their outer "
               "score; the best single model is ringed. The dashed step line is the Pareto "
               "frontier of these points: the best score to be had within each time."
               + (" The dotted squares are prune's front: the blends on its path that no "
                  "other beats on both score and time, by their in-sample scores, at "
                  "their members' times summed." if front else "")
               + " Times under 0.1 ms are drawn at 0.1 ms.")
    return _section("latency", "", h.figure(png, alt, caption))


def _leaderboard(f: RunFacts) -> str:
    trial = f.board["kind"] == "trial"
    board = f.board[~trial | (trial.cumsum() <= TOP_TRIALS)]
    outer = "outer_score" in board.columns
    headers = ("model", "learner", f.metric, *(("outer",) if outer else ()), "fit s",
               "predict s", "weight", "status", "reason", "params")
    rows = [(r["model"], r["learner"], r[f.metric], *((r["outer_score"],) if outer else ()),
             r["fit_seconds"], r["predict_seconds"], r["weight"], r["status"], r["reason"],
             _params(r["params"])) for _, r in board.iterrows()]
    classes = ["summary-row" if kind in ("blend", "best single") else
               "" if status == "done" else "muted"
               for kind, status in zip(board["kind"], board["status"])]
    shown, total = int((board["kind"] == "trial").sum()), int(trial.sum())
    which = f"all {total} trials" if shown == total else f"the first {shown} of {total} trials"
    intro = (f"The blend, the best single model and every combiner tried "
             f"(<code>fusion:NAME</code>), then {which} (finished ones best first, then "
             "stopped and failed ones). A trial's score is cross-validated (out of fold), a "
             f"combiner's {h.text(f.metric)} in sample, its outer score from nested "
             f"cross-validation ({h.text(f.direction)}). The whole table: "
             f"<code>autofuse leaderboard {h.text(f.path)}</code> or leaderboard.csv.")
    numeric = (2, 3, 4, 5, 6) if outer else (2, 3, 4, 5)
    return _section("leaderboard", intro, h.table(headers, rows, classes, numeric=numeric))


def _params(value: Any) -> h.Raw:
    if not isinstance(value, str) or not value:
        return h.Raw("")
    try:
        parsed = json.loads(value)
    except ValueError:
        return h.Raw(f"<code>{h.text(value)}</code>")
    if isinstance(parsed, dict) and not parsed:
        return h.Raw("")
    if isinstance(parsed, dict) and isinstance(parsed.get("front"), list):
        return _details(parsed)
    return h.Raw(f"<code>{h.text(json.dumps(parsed))}</code>")


def _data(f: RunFacts) -> str:
    columns = f.result.get("columns") or []
    if not columns:
        return _section("data", "", "<p>run.json holds no data summary.</p>")
    kept = Counter(c.get("kind", "?") for c in columns if c.get("action") == "keep")
    dropped = sum(1 for c in columns if c.get("action") != "keep")
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(kept.items()))
    intro = (f"{len(columns)} input columns: {h.text(kinds) or 'none'} kept, "
             f"{dropped} dropped.")
    rows = [(c.get("name"), c.get("kind"), c.get("n_unique"), c.get("n_missing"),
             c.get("action"), c.get("reason")) for c in columns]
    classes = ["" if c.get("action") == "keep" else "muted" for c in columns]
    table = h.table(("column", "kind", "distinct", "missing", "action", "reason"), rows,
                    classes, numeric=(2, 3))
    return _section("data", intro, h.folded(f"every column ({len(columns)})", table,
                                            open_=len(columns) <= FOLD_ROWS))


def _configuration(f: RunFacts) -> str:
    config = f.record.get("config", {})
    intro = ("The options of the latest call (a resumed run keeps its defining options); "
             "&ldquo;default&rdquo; means autofuse chose, as "
             "<code>autofuse fit --help</code> describes.")
    items = [(k, "default" if v is None else v) for k, v in config.items()]
    return _section("configuration", intro, h.pairs(items))


def _fingerprint(f: RunFacts) -> str:
    data = f.record.get("data", {})
    schema = data.get("schema") or []
    types = Counter(str(c.get("dtype")) for c in schema)
    sha256 = h.Raw(f"<code>{h.text(data.get('sha256'))}</code>")
    items = [("file", data.get("file")), ("sha256", sha256), ("rows", data.get("rows")),
             ("columns", data.get("columns")),
             ("types", ", ".join(f"{n} {t}" for t, n in sorted(types.items())))]
    table = h.table(("column", "type"), [(c.get("name"), c.get("dtype")) for c in schema])
    intro = "The table the run was fitted on; a resumed fit must be given the same data."
    return _section("fingerprint", intro, h.pairs(items) + h.folded(
        f"schema ({len(schema)} columns)", table, open_=len(schema) <= FOLD_ROWS))


def _calls(f: RunFacts) -> str:
    runs = f.record.get("runs", [])
    rows = [(i + 1, r.get("command", "fit"), r.get("started"), r.get("finished"),
             h.seconds(r.get("seconds")), r.get("status"), r.get("time_limit"),
             r.get("trials"), r.get("jobs"), _combiner_call(r), r.get("error", ""))
            for i, r in enumerate(runs)]
    classes = ["" if r.get("status") == "done" else "muted" for r in runs]
    headers = ("call", "command", "started", "finished", "took", "status", "time limit",
               "trials", "jobs", "combiner", "error")
    return _section("calls", "Every <code>autofuse fit</code> and <code>autofuse fuse</code> "
                    "call on this folder.",
                    h.table(headers, rows, classes, numeric=(0, 4, 6, 7, 8)))


def _combiner_call(call: dict[str, Any]) -> str:
    """A call's combiner with its options: ``prune max_members=2``."""
    options = call.get("combiner_options") or {}
    return " ".join([str(call.get("combiner") or ""),
                     *(f"{k}={json.dumps(v)}" if not isinstance(v, str) else f"{k}={v}"
                       for k, v in options.items())]).strip()


def _versions(f: RunFacts) -> str:
    versions = f.record.get("versions", {})
    return _section("versions", "The packages the last fit ran with.",
                    h.pairs(versions.items()))
