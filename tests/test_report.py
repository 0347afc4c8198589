"""``autofuse report RUN``: the HTML page of a run folder, through the command, with its
figures checked as PNGs and the page opened in a real headless browser."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from autofuse._cli import main

FAST = "linear,naive_bayes,knn"
#: The run's fusion step compares these (auto), so the report has several combiner rows.
COMBINERS = ("best", "average", "caruana")
SECTIONS = ("summary", "history", "learners", "blend", "combiners", "latency", "leaderboard",
            "data", "configuration", "fingerprint", "calls", "versions")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _fit(tmp: Path, frame: pd.DataFrame, learners: str) -> Path:
    frame.to_csv(tmp / "train.csv", index=False)
    out = tmp / "train.autofuse"
    code = main(["fit", str(tmp / "train.csv"), "--target", "target", "--trials", "8",
                 "--cv", "3", "--seed", "0", "--learners", learners, "--out", str(out),
                 "--combiner", "auto", "--combiner-option",
                 f"candidates={json.dumps(list(COMBINERS))}", "--quiet"])
    assert code == 0
    return out


def _report(run: Path, *extra: str) -> tuple[int, str, str]:
    """``autofuse report RUN`` in-process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["report", str(run), *extra])
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished classification run, with a categorical and a constant column."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.iloc[:200, :5].copy()
    frame["colour"] = np.random.default_rng(0).choice(["red", "green", "blue"], size=200)
    frame["constant"] = 1
    frame["target"] = y.iloc[:200].to_numpy()
    return _fit(tmp_path_factory.mktemp("report"), frame, FAST)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.iloc[:150].assign(target=y.iloc[:150])
    return _fit(tmp_path_factory.mktemp("report-regression"), frame, "linear,knn")


@pytest.fixture(scope="module")
def page(run):
    """The report of ``run`` written by the command: (exit code, stdout, stderr, html)."""
    code, out, err = _report(run)
    return code, out, err, (run / "report.html").read_text(encoding="utf-8")


class _Page(HTMLParser):
    """What the tests look at in a page: section ids, images, figures, and tags that
    load things (script, link, iframe, ...)."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.captions = 0
        self.loaders: list[str] = []
        self._in_caption = False
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "figcaption":
            self.captions += 1
        elif tag in ("script", "link", "iframe", "object", "embed", "source", "video",
                     "audio"):
            self.loaders.append(tag)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking its signature, the
    chunk's CRC and the closing IEND chunk."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(data[12:29]) == crc
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return struct.unpack(">II", data[16:24])


def _data_pngs(markup: str) -> list[bytes]:
    pngs = []
    for img in _Page(markup).images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix), img["src"][:40]
        pngs.append(base64.b64decode(img["src"][len(prefix):], validate=True))
    return pngs


def _copy_run(run: Path, dest: Path) -> Path:
    """The two files the report reads, in a new run folder."""
    dest.mkdir()
    for name in ("run.json", "leaderboard.csv"):
        shutil.copy(run / name, dest / name)
    return dest


def _edit(folder: Path, record=None, board=None) -> None:
    if record is not None:
        (folder / "run.json").write_text(json.dumps(record))
    if board is not None:
        board.to_csv(folder / "leaderboard.csv", index=False)


# ------------------------------------------------------------------------ the page itself
def test_report_command_writes_the_page_and_prints_its_path(run, page):
    code, out, err, _ = page
    assert code == 0, err
    assert out == f"{run / 'report.html'}\n"
    assert os.path.isabs(out.strip())


def test_page_has_every_section_in_order(page):
    markup = page[3]
    assert _Page(markup).sections == list(SECTIONS)
    assert markup.startswith("<!DOCTYPE html>")
    for heading in ("Optimisation history", "Score by learner", "The blend",
                    "Combiners compared", "Score and predict time", "Leaderboard", "Data summary",
                    "Configuration", "Data fingerprint", "Calls", "Versions"):
        assert f">{heading}</h2>" in markup


def test_summary_says_what_fusion_bought(run, page):
    record = json.loads((run / "run.json").read_text())
    result = record["result"]
    markup = page[3]
    summary = markup[markup.index('id="summary"'):markup.index('id="history"')]
    assert "higher is better" in summary
    assert f"{result['outer_score']:.6g}" in summary and f"{result['cv_score']:.6g}" in summary
    assert f"{result['best_single']['score']:.6g}" in summary
    assert html.escape(result["best_single"]["model"]) in summary
    gain = result["outer_score"] - result["best_single"]["score"]  # honest: the outer score
    assert f"{gain:+.4g}" in summary and "blend (outer) vs best single" in summary
    t = result["trials"]
    assert f"{t['done']} done" in summary and f"{t['stopped']} stopped" in summary


def test_every_figure_is_an_embedded_png_with_alt_text_and_caption(page):
    markup = page[3]
    parsed = _Page(markup)
    assert len(parsed.images) == 4
    assert parsed.captions == 4
    for img in parsed.images:
        assert len(img.get("alt", "")) > 20
    for png in _data_pngs(markup):
        width, height = _png_size(png)
        assert width > 100 and height > 100


def test_every_member_of_the_blend_appears(run, page):
    markup = page[3]
    blend = markup[markup.index('id="blend"'):markup.index('id="latency"')]
    members = json.loads((run / "run.json").read_text())["result"]["members"]
    assert members
    for member in members:
        assert f"<td>{html.escape(member['model'])}</td>" in blend


def test_combiners_are_compared_side_by_side(run, page):
    markup = page[3]
    section = markup[markup.index('id="combiners"'):markup.index('id="latency"')]
    board = pd.read_csv(run / "leaderboard.csv")
    rows = board[board["kind"] == "combiner"]
    assert sorted(rows["learner"]) == sorted(COMBINERS)
    assert list(rows["model"]) == [f"fusion:{name}" for name in rows["learner"]]
    assert section.count("<tr") == 1 + len(rows)  # the header, then one row per combiner
    chosen = json.loads((run / "run.json").read_text())["result"]["combiner"]
    for _, row in rows.iterrows():
        name = row["learner"]
        cell = (f"<td><strong>{name}</strong> &#9733; chosen</td>" if name == chosen
                else f"<td>{name}</td>")
        assert cell in section, name
        start = section.index(cell)
        cells = section[start:section.index("</tr>", start)]
        assert f"{row['roc_auc']:.6g}" in cells and f"{row['outer_score']:.6g}" in cells
        assert f'<td class="num">{int(row["members"])}</td>' in cells
    assert section.count("&#9733; chosen") == 1
    blend = board[board["kind"] == "blend"].iloc[0]
    assert blend["learner"] == chosen and blend["outer_score"] == pytest.approx(
        rows.loc[rows["learner"] == chosen, "outer_score"].iloc[0])
    alt = _Page(markup).images[-1]["alt"]
    assert "Pareto frontier" in alt and all(name in alt for name in COMBINERS)


def test_pareto_keeps_the_points_nothing_beats():
    from autofuse._report._facts import pareto

    points = [(1.0, 0.90), (2.0, 0.95), (3.0, 0.94), (0.5, 0.80), (2.0, 0.93),
              (np.nan, 0.99), (4.0, 0.96)]
    assert pareto(points, greater_is_better=True).tolist() == [3, 0, 1, 6]
    errors = [(1.0, 3.0), (2.0, 2.0), (3.0, 2.5), (0.5, 4.0)]
    assert pareto(errors, greater_is_better=False).tolist() == [3, 0, 1]
    assert pareto([], greater_is_better=True).size == 0


def test_page_loads_nothing_from_outside(page):
    markup = page[3]
    assert not re.search(r"https?://", markup)
    assert _Page(markup).loaders == []
    assert re.search(r"""(src|href)\s*=\s*["']?(?!["']|data:|#)""", markup) is None
    assert "Content-Security-Policy" in markup


def test_tables_cover_the_leaderboard_data_configuration_calls_and_versions(run, page):
    markup = page[3]
    record = json.loads((run / "run.json").read_text())
    board = pd.read_csv(run / "leaderboard.csv")
    trials = board[board["kind"] == "trial"]
    assert len(board) - len(trials) == 2 + len(COMBINERS)
    leaderboard = markup[markup.index('id="leaderboard"'):markup.index('id="data"')]
    for model in [*board.loc[board["kind"] != "trial", "model"], *trials["model"].iloc[:20]]:
        assert f"<td>{html.escape(model)}</td>" in leaderboard
    for column in record["result"]["columns"]:
        assert f"<td>{html.escape(column['name'])}</td>" in markup
    dropped = [c for c in record["result"]["columns"] if c["action"] == "drop"]
    assert [c["name"] for c in dropped] == ["constant"]
    assert ('<tr class="muted"><td>constant</td><td>numeric</td><td class="num">1</td>'
            '<td class="num">0</td><td>drop</td><td>constant</td></tr>') in markup
    assert record["data"]["sha256"] in markup
    for package, version in record["versions"].items():
        assert f"<th>{html.escape(package)}</th><td>{html.escape(version)}</td>" in markup
    learners = html.escape(json.dumps(FAST.split(",")))
    assert f"<th>learners</th><td><code>{learners}</code></td>" in markup


def test_out_option_and_output_is_deterministic(run, tmp_path):
    first, second = tmp_path / "a.html", tmp_path / "b.html"
    assert _report(run, "--out", str(first))[:2] == (0, f"{first}\n")
    assert _report(run, "--out", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()


def test_report_leaves_matplotlib_settings_alone(run, tmp_path):
    import matplotlib

    from autofuse._report import write_report
    from autofuse._run_folder import RunFolder

    had_pyplot = "matplotlib.pyplot" in sys.modules
    before = matplotlib.rcParams.copy()
    write_report(RunFolder(str(run)), str(tmp_path / "r.html"))
    assert dict.__eq__(matplotlib.rcParams, before)  # compares stored values, no lookups
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules


# ------------------------------------------------------------------- direction and edges
def test_regression_lower_is_better(regression_run):
    from autofuse._report._facts import read_facts
    from autofuse._run_folder import RunFolder

    code, _, err = _report(regression_run)
    assert code == 0, err
    markup = (regression_run / "report.html").read_text()
    summary = markup[markup.index('id="summary"'):markup.index('id="history"')]
    assert "rmse" in summary and "lower is better" in summary
    facts = read_facts(RunFolder(str(regression_run)))
    assert not facts.greater_is_better
    assert facts.gain == pytest.approx(facts.best_score - facts.blend_outer)
    assert facts.learners[0] == facts.trials.loc[facts.trials["score"].idxmin(), "learner"]
    for png in _data_pngs(markup):
        assert min(_png_size(png)) > 0


def test_running_best_goes_the_metric_s_way():
    from autofuse._report._facts import running_best

    scores = [3.0, np.nan, 1.0, 2.0, 0.5]
    assert running_best(scores, greater_is_better=False).tolist() == [3, 3, 1, 1, 0.5]
    assert running_best(scores, greater_is_better=True).tolist() == [3, 3, 3, 3, 3]
    assert running_best([], greater_is_better=True).size == 0


def _one_trial(record, board):
    """Only the best trial finished; a failed trial with no score and no times."""
    trials = board[board["kind"] == "trial"]
    failed = trials.iloc[[0]].assign(model="knn#99", trial=99, learner="knn", status="failed",
                                     weight=0.0, reason="boom")
    failed[record["result"]["metric"]] = np.nan
    board = pd.concat([board[board["kind"] != "trial"], trials.iloc[[0]], failed],
                      ignore_index=True)
    board["predict_seconds"] = 0.0  # a time of 0 on a log axis
    board["predict_seconds_per_1000"] = 0.0
    best = trials["model"].iloc[0]
    record["result"]["members"] = [{"model": best, "weight": 1.0}]
    record["result"]["trials"] = {"done": 1, "stopped": 0, "failed": 1}
    return record, board, [best]


def _members_from_board(record, board):
    del record["result"]["members"]
    weighted = board["weight"].fillna(0).gt(0) & board["kind"].eq("trial")
    return record, board, list(board.loc[weighted, "model"])


def _no_members(record, board):
    del record["result"]["members"]
    board["weight"] = 0.0
    return record, board, []


def _with_prune(record, board):
    """A prune row with its Pareto front, as ``autofuse fuse --combiner prune`` writes."""
    trials = board[board["kind"] == "trial"]
    top = [int(t) for t in trials["trial"].iloc[:3]]
    front = [{"members": top[:k], "score": 0.9 + 0.01 * k, "latency_1": 1e-3 * k,
              "latency_10000": 1e-5 * k, "bytes": 1000 * k} for k in (1, 2, 3)]
    front[1]["latency_10000"] = None  # not measured: drawn at its members' times all the same
    metric = record["result"]["metric"]
    prune = board[board["kind"] == "combiner"].iloc[[0]].assign(
        model="fusion:prune", learner="prune", status="done", reason="",
        params=json.dumps({"members": 2, "method": "greedy", "front": front}))
    prune[metric] = 0.92
    board = pd.concat([board[board["kind"] != "trial"], prune, trials], ignore_index=True)
    return record, board, list(m["model"] for m in record["result"]["members"])


def _older_leaderboard(record, board):
    """A run folder written before combiner rows: no kind, outer score, members, bytes or
    predict time per 1,000 rows; run.json without an outer score."""
    board = board[~board["model"].str.startswith("fusion:")].drop(
        columns=["kind", "outer_score", "members", "bytes", "predict_seconds_per_1000"])
    del record["result"]["outer_score"]
    return record, board, list(m["model"] for m in record["result"]["members"])


@pytest.mark.parametrize("edit", [_one_trial, _members_from_board, _no_members, _with_prune,
                                  _older_leaderboard])
def test_unusual_runs_still_make_a_whole_page(run, tmp_path, edit):
    folder = _copy_run(run, tmp_path / "run")
    record = json.loads((folder / "run.json").read_text())
    record, board, members = edit(record, pd.read_csv(folder / "leaderboard.csv"))
    _edit(folder, record, board)
    code, _, err = _report(folder)
    assert code == 0, err
    markup = (folder / "report.html").read_text()
    assert _Page(markup).sections == list(SECTIONS)
    pngs = _data_pngs(markup)
    assert len(pngs) == (4 if members else 3)
    for png in pngs:
        assert min(_png_size(png)) > 0
    blend = markup[markup.index('id="blend"'):markup.index('id="latency"')]
    for model in members:
        assert f"<td>{html.escape(model)}</td>" in blend
    if edit is _no_members:
        assert "no member weights" in blend
    if edit is _members_from_board:
        assert "run.json names no members" in blend
    combiners = markup[markup.index('id="combiners"'):markup.index('id="latency"')]
    if edit is _with_prune:
        assert "<td>prune</td>" in combiners and "3 points (drawn below)" in combiners
        assert "prune&#x27;s front of 3 blends" in markup  # at their members' summed times
    if edit is _older_leaderboard:
        assert "no combiner rows" in combiners
        summary = markup[markup.index('id="summary"'):markup.index('id="history"')]
        assert "blend (in sample) vs best single" in summary


# ---------------------------------------------------------------------------- bad input
def _one_line_error(capsys, argv, words):
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("autofuse report: error: ")
    assert words in lines[0], lines[0]


def test_not_a_run_folder(capsys, tmp_path):
    _one_line_error(capsys, ["report", str(tmp_path)], "is not an autofuse run folder")
    _one_line_error(capsys, ["report", str(tmp_path / "missing")], "no such run folder")


def test_run_without_a_result_yet(capsys, run, tmp_path):
    folder = _copy_run(run, tmp_path / "run")
    record = json.loads((folder / "run.json").read_text())
    del record["result"]
    _edit(folder, record)
    (folder / "leaderboard.csv").unlink()
    _one_line_error(capsys, ["report", str(folder)], "its first fit has not finished")
    assert not (folder / "report.html").exists()


def test_out_that_cannot_be_written(capsys, run, tmp_path):
    _one_line_error(capsys, ["report", str(run), "--out", str(tmp_path)], "is a folder")
    _one_line_error(capsys, ["report", str(run), "--out", str(tmp_path / "no" / "r.html")],
                    "no such folder")


def test_missing_matplotlib(capsys, monkeypatch, run, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    out = tmp_path / "r.html"
    _one_line_error(capsys, ["report", str(run), "--out", str(out)],
                    "the report needs matplotlib: pip install 'autofuse[report]'")
    assert not out.exists()


# ------------------------------------------------------------------- in a real browser
#: Put first in <head>: records uncaught errors, console.error calls, resources that fail
#: to load and anything the page's security policy refuses; once the page has loaded it
#: writes them, with every image's size, as JSON into <pre id="autofuse-result">. Chromium
#: shows a truncated PNG without any error (as far as it got), so the probe also draws
#: each image on a canvas and counts the opaque pixels of its last row: the figures have
#: an opaque white background, so a wholly decoded one has a fully opaque last row.
PROBE = """<script>
(function () {
  var errors = [];
  window.onerror = function (message, source, line) {
    errors.push("uncaught error: " + message + " (line " + line + ")");
  };
  window.addEventListener("error", function (event) {
    var el = event.target;
    if (el && el !== window && el.tagName) {
      errors.push("failed to load <" + el.tagName.toLowerCase() + "> "
                  + String(el.currentSrc || el.src || el.href || "").slice(0, 60));
    }
  }, true);
  document.addEventListener("securitypolicyviolation", function (event) {
    errors.push("refused by the page's policy: " + event.violatedDirective + " "
                + event.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
  function opaqueInLastRow(img) {
    if (!img.naturalWidth || !img.naturalHeight) return 0;
    var canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    var context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    var row = context.getImageData(0, img.naturalHeight - 1, img.naturalWidth, 1).data;
    var opaque = 0;
    for (var i = 3; i < row.length; i += 4) if (row[i] === 255) opaque++;
    return opaque;
  }
  window.addEventListener("load", function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      var box = img.getBoundingClientRect();
      return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
              naturalHeight: img.naturalHeight, width: box.width, height: box.height,
              opaqueInLastRow: opaqueInLastRow(img)};
    });
    var pre = document.createElement("pre");
    pre.id = "autofuse-result";
    pre.textContent = JSON.stringify({images: images, errors: errors});
    document.body.appendChild(pre);
  });
})();
</script>"""

#: A chromium log record: "[pid:tid:date/time:LEVEL:SOURCE...] text". Page console
#: messages have a SOURCE of "CONSOLE:<line>" (older builds: "CONSOLE(<line>)"); chromium
#: 156 logs console.error, console.log and policy refusals alike at INFO, so the level
#: cannot tell them apart.
LOG_RECORD = re.compile(r"^\[\d+:\d+:\d+/[\d.]+:[A-Z]+:([^\]]*)\]", re.MULTILINE)


@pytest.fixture(scope="module")
def browser():
    return _find_browser()


def _find_browser() -> str:
    """The headless browser; skip without one, unless AUTOFUSE_REQUIRE_BROWSER=1 (CI)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("AUTOFUSE_REQUIRE_BROWSER") == "1":
        pytest.fail("AUTOFUSE_REQUIRE_BROWSER=1 but no chromium, chromium-browser or "
                    "google-chrome is on PATH")
    pytest.skip("no headless browser (chromium, chromium-browser, google-chrome) on PATH")


def _open(browser: str, page: Path, profile: Path) -> tuple[dict | None, list[str]]:
    """Load ``page`` in headless chromium: (the probe's JSON if the page carries the
    probe, else None; the console messages chromium logged for the page)."""
    url = page.as_uri()
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
               "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    starts = list(LOG_RECORD.finditer(done.stderr))
    messages = []
    for i, start in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(done.stderr)
        record = done.stderr[start.start():end]
        if start.group(1).startswith("CONSOLE") and url in record:
            messages.append(record.strip())
    found = re.search(r'<pre id="autofuse-result">(.*?)</pre>', done.stdout, re.DOTALL)
    result = json.loads(html.unescape(found.group(1))) if found else None
    return result, messages


def _with_probe(page: Path, dest: Path) -> Path:
    markup, n = re.subn(r"<head>", lambda m: m.group(0) + PROBE,
                        page.read_text(encoding="utf-8"), count=1)
    assert n == 1
    dest.write_text(markup, encoding="utf-8")
    return dest


def _assert_renders_cleanly(result: dict | None, messages: list[str], images: int) -> None:
    assert result is not None, "the probe wrote no result: the page did not finish loading"
    assert result["errors"] == []
    assert messages == []
    assert len(result["images"]) == images
    for img in result["images"]:
        assert img["complete"], img["alt"]
        assert img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img["alt"]
        assert img["width"] > 0 and img["height"] > 0, img["alt"]
        assert img["opaqueInLastRow"] == img["naturalWidth"], f"{img['alt']}: not all drawn"


def test_report_renders_in_a_browser_without_errors(browser, run, page, tmp_path):
    report = run / "report.html"
    result, messages = _open(browser, _with_probe(report, tmp_path / "probed.html"),
                             tmp_path / "profile")
    _assert_renders_cleanly(result, messages, images=4)
    # The page exactly as written (no probe): chromium logs no console message for it.
    _, messages = _open(browser, report, tmp_path / "profile")
    assert messages == []


BROKEN = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; script-src 'unsafe-inline'">
</head><body>
<img alt="corrupt" src="data:image/png;base64,iVBORw0KGgo=">
<img alt="truncated" src="data:image/png;base64,{truncated}">
<img alt="remote" src="https://example.invalid/plot.png">
<script>console.error("deliberate console error"); throw new Error("deliberate throw");</script>
</body></html>
"""


def test_browser_check_catches_a_broken_page(browser, page, tmp_path):
    """The same harness on a page with a corrupt image, a truncated one (the first 2 kB
    of a report figure), a remote image, a console.error and an uncaught exception: every
    one is caught, so the test above can fail."""
    truncated = base64.b64encode(_data_pngs(page[3])[0][:2000]).decode("ascii")
    broken = tmp_path / "broken.html"
    broken.write_text(BROKEN.replace("{truncated}", truncated))
    result, messages = _open(browser, _with_probe(broken, tmp_path / "probed.html"),
                             tmp_path / "profile")
    errors = "\n".join(result["errors"])
    assert "console.error: deliberate console error" in errors
    assert "uncaught error: Uncaught Error: deliberate throw" in errors
    assert "failed to load <img> data:image/png" in errors
    assert "refused by the page's policy: img-src https://example.invalid/plot.png" in errors
    corrupt, cut, remote = result["images"]
    assert corrupt["naturalWidth"] == remote["naturalWidth"] == 0
    assert cut["naturalWidth"] > 0 and cut["opaqueInLastRow"] == 0  # shown, no error
    assert any("deliberate console error" in m for m in messages)
    assert any("Content Security Policy" in m for m in messages)
    with pytest.raises(AssertionError):
        _assert_renders_cleanly(result, [], images=3)
    with pytest.raises(AssertionError):  # the truncated image alone
        _assert_renders_cleanly({"images": [cut], "errors": []}, [], images=1)
    with pytest.raises(AssertionError):  # chromium's log alone
        _assert_renders_cleanly({"images": [], "errors": []}, messages, images=0)
    # Without the probe, chromium's own log still reports the page's console messages.
    _, messages = _open(browser, broken, tmp_path / "profile")
    assert any("deliberate console error" in m for m in messages)


def test_no_browser_skips_unless_one_is_required(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("AUTOFUSE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _find_browser()
    monkeypatch.setenv("AUTOFUSE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="AUTOFUSE_REQUIRE_BROWSER=1"):
        _find_browser()
