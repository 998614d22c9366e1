"""Reports for real, from recorded results: a smoke run of real cells (TensorFlow MLP and CNN, two repeats, each a
separate process) recorded by today's code (tests/data/schema2-run, `python -m tooling.record_fixture`) gets its
report written by the report subcommand; the Markdown is checked against the raw results, the HTML is opened in
headless Chromium, and `compare` is run against the run itself and against doctored copies of it.

The numbers expected here are recomputed from result.json and matrix.yaml, not taken from the report's own code.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from common.stats import NOISY_CV, median_ci_ranks, spread, time_to_target
from reports.article import load_article
from reports.build import write_report
from runner.paths import REPO_ROOT
from tests.browser import check_page, chromium_path
from tests.ci import FIX, missing
from tests.results_factory import fresh_matrix_run

MODELS = ["mlp", "cnn"]
REPEATS = 2
EPOCHS = 3


def run_py(args: list[str], cwd: Path = REPO_ROOT, env: dict | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


RECORDED = REPO_ROOT / "tests" / "data" / "schema2-run"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    """The recorded smoke run, copied, with its report written by `python -m runner report` (as a run does)."""
    root = tmp_path_factory.mktemp("smoke")
    run_dir = root / "results" / "20261202-140138-f56e"
    shutil.copytree(RECORDED, run_dir)
    proc = run_py(["-m", "runner", "report", str(run_dir)], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(run_dir.glob("*/result.json"))]
    assert len(results) == len(MODELS) * REPEATS and all(r["status"] == "ok" for r in results)
    return {"root": root, "run_dir": run_dir, "report": run_dir / "report", "proc": proc,
            "results": results}


def copy_run(run_dir: Path, dest: Path, doctor) -> Path:
    """A copy of a real run with every result.json passed through `doctor(result) -> result`."""
    shutil.copytree(run_dir, dest)
    for path in dest.glob("*/result.json"):
        path.write_text(json.dumps(doctor(json.loads(path.read_text()))))
    return dest


def slower(factor: float, repeat: int | None = None):
    """Every time of the result scaled (only repeat `repeat`'s, when given): epochs, their summaries, the fit."""
    def doctor(r: dict) -> dict:
        if repeat is not None and r["cell"]["repeat"] != repeat:
            return r
        for e in r["epochs"]:
            e["wall_s"] *= factor
        for key in ("first_epoch_s", "steady_epoch_s", "compile_s", "article_epoch_s", "build_fn_s"):
            r[key] *= factor
        r["timeline"]["fit_s"] *= factor
        return r
    return doctor


def only_repeat(n: int):
    """A copy holding one repeat per cell (the other result folders removed), as a plain `--repeats 1` run."""
    def keep(run_dir: Path, dest: Path, doctor=lambda r: r) -> Path:
        out = copy_run(run_dir, dest, doctor)
        for result in out.glob("*/result.json"):
            if json.loads(result.read_text())["cell"]["repeat"] != n:
                shutil.rmtree(result.parent)
        return out
    return keep


# ---------------------------------------------------------------------------------------------------------------
# The expected figures, recomputed from the raw results


def expected(results: list[dict]) -> dict[str, dict]:
    matrix = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    out = {}
    for model in MODELS:
        mine = [r for r in results if r["cell"]["model"] == model]
        steady = [e["wall_s"] for r in mine for e in r["epochs"][1:]]
        med = statistics.median(steady)
        flop = float(matrix["models"][model]["flop_per_sample"])
        n_train = mine[0]["epochs"][0]["samples"]
        n_val = mine[0]["data"]["test_samples"]
        batch = matrix["models"][model]["batch_size"]
        out[model] = {
            "steady": med, "lo": min(steady), "hi": max(steady),
            "cv": statistics.stdev(steady) / statistics.fmean(steady),
            "first": statistics.median(r["epochs"][0]["wall_s"] for r in mine),
            "samples_per_s": n_train / med,
            "steps_per_s": math.ceil(n_train / batch) / med,
            "gflops": (3 * flop * n_train + flop * n_val) / med / 1e9,
            "test_acc": statistics.median(r["test"]["accuracy"] for r in mine),
            "cpu_peak_gflops": statistics.median(r["host"]["cpu_peak"]["fp32_gflops"] for r in mine),
            "busy": any(r["host"]["load"]["busy"] for r in mine),
        }
    return out


def md_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Every pipe table under each `## ` heading: {heading: [row dicts]} (first table of a section)."""
    out: dict[str, list[dict[str, str]]] = {}
    section = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---") and section not in out:
            header = [c.strip() for c in line.strip("|").split(" | ")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", lines[i].strip().strip("|"))]
                rows.append(dict(zip(header, cells, strict=True)))
                i += 1
            out[section] = rows
            continue
        i += 1
    return out


def num(text: str) -> float:
    return float(re.search(r"-?[\d,]*\.?\d+(?:e[-+]?\d+)?", text).group(0).replace(",", ""))


def close(shown: str, value: float, rel: float = 0.006) -> bool:
    """A shown figure (3 significant digits) matches the value up to its rounding."""
    return math.isclose(num(shown), value, rel_tol=rel, abs_tol=0.0006)


# ---------------------------------------------------------------------------------------------------------------
# The report a run ends with


def test_the_report_subcommand_writes_every_part_of_the_report(smoke):
    report = smoke["report"]
    assert f"report: {report / 'index.html'}" in smoke["proc"].stdout.replace("\n", "")
    for name in ("index.html", "summary.md", "data/epochs.csv", "data/epochs.parquet", "data/summary.csv",
                 "data/cells.csv"):
        assert (report / name).is_file(), name
    for model in MODELS:
        for kind in ("speed", "accuracy", "latency"):
            for ext in ("png", "svg"):
                assert (report / "plots" / f"{model}-{kind}.{ext}").stat().st_size > 1000
    assert len(list((report / "results").glob("*/*.json"))) == len(MODELS) * REPEATS  # provenance travels along


def test_tidy_data_holds_every_epoch_of_every_cell(smoke):
    csv = pd.read_csv(smoke["report"] / "data" / "epochs.csv")
    parquet = pd.read_parquet(smoke["report"] / "data" / "epochs.parquet")
    assert len(csv) == len(parquet) == len(MODELS) * REPEATS * EPOCHS
    assert list(csv.columns) == list(parquet.columns)
    for r in smoke["results"]:
        mine = parquet[parquet["cell_id"] == r["cell_id"]].sort_values("epoch")
        assert list(mine["wall_s"]) == [e["wall_s"] for e in r["epochs"]]
        assert list(mine["val_accuracy"]) == pytest.approx([e["val_accuracy"] for e in r["epochs"]])
        assert list(mine["steady"]) == [False, True, True]
        assert set(mine["data_source"]) == {r["data"]["source"]} and set(mine["repeat"]) == {r["cell"]["repeat"]}


def test_markdown_summary_matches_the_raw_results(smoke):
    md = (smoke["report"] / "summary.md").read_text()
    tables = md_tables(md)
    want = expected(smoke["results"])
    article = load_article()
    glance = {row["test"]: row for row in tables[next(k for k in tables if k.startswith("At a glance"))]}
    for model in MODELS:
        title = article.tests[model].title
        heading = next(k for k in tables if k.startswith(title))
        (row,) = tables[heading]
        w = want[model]
        assert row["backend"].startswith("[TensorFlow](index.html#cell--")
        assert close(row["steady s/epoch"], w["steady"])
        lo, hi = re.match(r"([\d.]+)-([\d.]+) \(min-max\)", row["interval"]).groups()  # 4 samples: min-max
        assert close(lo, w["lo"]) and close(hi, w["hi"])
        assert abs(num(row["CV"]) - w["cv"] * 100) <= 0.051
        assert row["CV"].endswith("noisy") == (w["cv"] > NOISY_CV)
        assert close(row["1st epoch s"], w["first"])
        assert close(row["samples/s"], w["samples_per_s"])
        assert close(row["steps/s"], w["steps_per_s"])
        assert close(row["GFLOP/s"], w["gflops"])
        # a CPU's peak is the worker's estimate (cores x clock x FLOP/cycle), stated in a caveat
        assert close(row["% of peak"], w["gflops"] / w["cpu_peak_gflops"] * 100, rel=0.01)
        assert close(row["test acc"], w["test_acc"], rel=1e-3)
        assert row["time to target"].startswith("not reached")  # fixture data: random labels
        assert row["2017 K80 s/epoch"] == f"{article.tests[model].figures['tensorflow'].s_per_epoch:g}"
        assert row["repeats"] == str(REPEATS)
        assert close(glance[title]["TensorFlow"], w["steady"])
    # the 2017 comparison is labelled, never silently compared
    assert "**DIFFERENT HARDWARE, NOT THE SAME WORK**" in md
    assert "| now / 2017 |" in md and "not comparable" in md and "2.77" in md and "10.25" in md
    assert "1. MXNet 1.43 · 2. Theano ~2.6 · 3. CNTK 2.76 · 4. TensorFlow 2.77" in md
    assert ("**MACHINE BUSY**" in md) == any(w["busy"] for w in want.values())
    peak = smoke["results"][0]["host"]["cpu_peak"]
    assert "**CPU PEAK ESTIMATED**" in md and f"{peak['fp32_gflops']:g} GFLOP/s = {peak['cores']} cores" in md
    assert "Our 'article-style' column is the wall time around our whole fit call / epochs" in md
    noisy = [m for m in MODELS if want[m]["cv"] > NOISY_CV]
    assert ("**NOISY CELLS**" in md) == bool(noisy)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs, self.scripts = set(), [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        self.refs += [a[k] for k in ("href", "src") if k in a]
        self.scripts += tag == "script"


def test_html_is_offline_and_every_number_reaches_its_provenance(smoke):
    page = smoke["report"] / "index.html"
    parser = _Links()
    parser.feed(page.read_text())
    assert parser.scripts == 0
    assert not [r for r in parser.refs if re.match(r"^[a-z]+:", r)], "no CDN, no remote resource"
    for ref in parser.refs:
        if ref.startswith("#"):
            assert ref[1:] in parser.ids, ref
        else:
            assert (page.parent / ref).is_file(), ref
    html = page.read_text()
    for r in smoke["results"]:
        copy = f"results/{smoke['run_dir'].name}/{r['cell_id']}.json"
        assert copy in parser.refs  # the raw result, one click from its row's provenance
        assert r["git_commit"] is None or r["git_commit"] in html
        assert r["versions"]["tensorflow"] in html
    # every 2017 figure is shown with the notebook run it was read from
    article = load_article()
    assert "Where each figure comes from" in html
    for test in article.tests.values():
        for fig in test.figures.values():
            assert escape(fig.source) in html, fig.source


def need_chromium() -> None:
    """Skip, visibly, only on a developer's machine without Chromium; in CI its absence is a failure."""
    if chromium_path() is None:
        missing("chromium is not installed", FIX["chromium"])


def test_report_opens_in_headless_chromium_without_errors(smoke, tmp_path):
    need_chromium()
    check = check_page(smoke["report"] / "index.html", tmp_path)
    assert check.console_errors == []
    assert len(check.images) == len(MODELS) * 3 and check.broken_images == []
    assert all(i["width"] > 500 for i in check.images)
    assert check.title == f"Keras Backend Matrix: {smoke['run_dir'].name}"
    assert check.screenshots["full"].stat().st_size > 50_000
    print(f"screenshots: {check.screenshots}")


@pytest.mark.parametrize("width, height, mobile", [(1280, 800, False), (390, 844, True)])
def test_the_verdict_is_above_the_fold_on_a_laptop_and_a_phone(tmp_path, width, height, mobile):
    """The fresh run's report (every kind of caveat, the twins, the 2017 stacks on other work) opened as a reader
    would: the verdict wholly on the first screen, the page no wider than the screen, the caveats box present."""
    need_chromium()
    index = write_report([fresh_matrix_run(tmp_path / "results")], tmp_path / "report")
    check = check_page(index, tmp_path / "shots", width=width, height=height, mobile=mobile,
                       measure=("#verdict", "#overview", "#caveats-box"))
    assert check.console_errors == [] and check.broken_images == []
    assert check.viewport == (width, height)
    assert check.above_the_fold("#verdict"), (check.boxes, check.screenshots["top"])
    assert check.boxes["#overview"]["top"] < height, check.boxes  # the table starts on the first screen
    boxes = check.boxes  # the order a reader meets them: the answer, the table, then the one caveats box
    assert boxes["#verdict"]["bottom"] <= boxes["#overview"]["top"] < boxes["#caveats-box"]["top"], boxes
    assert check.scroll_width <= width, check.scroll_width  # no sideways scrolling of the page itself
    print(f"{width}x{height}: verdict {check.boxes['#verdict']}, screenshot {check.screenshots['top']}")


def test_the_browser_check_catches_a_broken_page(tmp_path):
    """The check above can fail: a missing image, a console error and an exception are all seen."""
    need_chromium()
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><title>broken</title><img src="missing.png"><img src="data:image/png;base64,'
                    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==">'
                    '<script>console.error("boom"); null.x;</script>')
    check = check_page(page, tmp_path / "out")
    assert [i["src"] for i in check.broken_images] == ["missing.png"]
    assert any("boom" in e for e in check.console_errors)
    assert any(e.startswith("exception:") for e in check.console_errors)
    assert any("ERR_FILE_NOT_FOUND" in e for e in check.console_errors)


def test_report_subcommand_defaults_to_the_latest_run(smoke, tmp_path):
    home = tmp_path / "project"
    (home / "results").mkdir(parents=True)
    copied = home / "results" / smoke["run_dir"].name
    shutil.copytree(smoke["run_dir"], copied)
    shutil.rmtree(copied / "report")  # came along with the run: the subcommand must write it anew
    (home / "results" / "latest").symlink_to(smoke["run_dir"].name)
    proc = run_py(["-m", "runner", "report"], cwd=home, env={"PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stderr
    index = (copied / "report" / "index.html").resolve()
    assert index.is_file() and f"report: {index}" in proc.stdout  # beside the results, the path printed
    assert (home / "results" / "latest" / "report" / "index.html").is_file()  # latest leads straight to it
    assert not (home / "reports").exists() and not (REPO_ROOT / "reports" / smoke["run_dir"].name).exists()
    proc = run_py(["-m", "runner", "report", "--name", "side-by-side", "results/latest"], cwd=home,
                  env={"PYTHONPATH": str(REPO_ROOT)})
    merged = (home / "results" / "reports" / "side-by-side" / "index.html").resolve()
    assert proc.returncode == 0 and merged.is_file() and f"report: {merged}" in proc.stdout, proc.stderr
    assert [r.name for r in (merged.parent / "results").iterdir()] == [smoke["run_dir"].name]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_py(["-m", "runner", "report"], cwd=empty, env={"PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 2 and "run the matrix first" in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# Loud labels and broken inputs


def test_mixed_hardware_and_synthetic_data_are_labelled_loudly(smoke, tmp_path):
    def doctor(r: dict) -> dict:
        if r["cell"]["repeat"] == 1 and r["cell"]["model"] == "mlp":
            r["host"]["cpu_model"] = "Some Other CPU"
        if r["cell"]["model"] == "cnn":
            r["data"]["source"] = "synthetic"
        return r

    run = copy_run(smoke["run_dir"], tmp_path / "results" / "mixed", doctor)
    index = write_report([run], tmp_path / "reports" / "mixed")
    md = (index.parent / "summary.md").read_text()
    html = index.read_text()
    for words in ("MIXED HARDWARE", "SYNTHETIC DATA"):
        assert f"**{words}**" in md and f"<b>{words}</b>" in html
    assert "Some Other CPU" in md


def test_article_profile_on_a_known_gpu_gets_a_ratio_and_a_share_of_peak(smoke, tmp_path):
    """The like-for-like case: the article profile on real data gets a now/2017 ratio (total fit / epochs, as 2017
    timed it), and a GPU with a known peak gets its share; the hardware difference is still said."""
    def doctor(r: dict) -> dict:
        r["cell"]["profile"] = "article"
        r["host"]["gpu"] = {"available": True, "devices": ["NVIDIA H100 80GB HBM3"], "used": True}
        return r

    run = copy_run(smoke["run_dir"], tmp_path / "results" / "article", doctor)
    md = (write_report([run], tmp_path / "reports" / "article").parent / "summary.md").read_text()
    want = expected(smoke["results"])
    article = load_article()
    for model in MODELS:
        mine = [r for r in smoke["results"] if r["cell"]["model"] == model]
        # 2017's way: the whole fit / epochs (function build and compilation included), median over repeats
        article_style = statistics.median(r["timeline"]["fit_s"] / len(r["epochs"]) for r in mine)
        assert article_style == pytest.approx(statistics.median(r["article_epoch_s"] for r in mine))
        section = md[md.index(f"## {article.tests[model].title}"):]
        tables = md_tables(section)
        (row,) = next(iter(tables.values()))
        assert close(row["% of peak"], want[model]["gflops"] / 66.9e3 * 100, rel=0.01)
        tf_2017 = article.tests[model].figures["tensorflow"].s_per_epoch
        comparison = next(line for line in section.splitlines() if line.startswith(f"| TensorFlow | {tf_2017:g} |"))
        assert f"| {article_style / tf_2017:.2f}x |" in comparison
    assert "**DIFFERENT HARDWARE**" in md and "NOT THE SAME WORK" not in md and "GPU: NVIDIA H100" in md


def test_failed_cells_are_shown_with_their_reason(smoke, tmp_path):
    """A repeat that died leaves its row with the repeats that finished; a test whose every repeat died keeps a
    row with the reason, and the page still opens cleanly."""
    def doctor(r: dict) -> dict:
        if r["cell"]["model"] == "cnn" or r["cell"]["repeat"] == 1:
            r.update(status="failed", error="worker killed by signal SIGKILL in stage train", stage="train",
                     epochs=[], steady_epoch_s=None, first_epoch_s=None, compile_s=None, test=None)
        return r

    run = copy_run(smoke["run_dir"], tmp_path / "results" / "failed", doctor)
    index = write_report([run], tmp_path / "reports" / "failed")
    md = (index.parent / "summary.md").read_text()
    tables = md_tables(md)
    (mlp,) = next(v for k, v in tables.items() if k.startswith("MNIST MLP"))
    (cnn,) = next(v for k, v in tables.items() if k.startswith("MNIST CNN"))
    assert mlp["repeats"] == "1/2" and close(mlp["steady s/epoch"], statistics.median(
        e["wall_s"] for r in smoke["results"] if r["cell"]["model"] == "mlp" and r["cell"]["repeat"] == 0
        for e in r["epochs"][1:]))
    assert cnn["steady s/epoch"] == "failed: worker killed by signal SIGKILL in stage train"
    # one reason, one box (not one per cell), naming every cell it applies to
    assert "**FAILED: 2 cells**" in md and md.count("SIGKILL in stage train Cells:") == 1
    assert "cnn x TensorFlow" in md.split("SIGKILL in stage train Cells:")[1].split("\n")[0]
    assert "mlp x TensorFlow" in md.split("SIGKILL in stage train Cells:")[1].split("\n")[0]
    need_chromium()
    check = check_page(index, tmp_path / "browser")
    assert check.console_errors == [] and check.broken_images == [] and len(check.images) == 3  # the MLP's three


def test_a_corrupt_result_is_reported_and_skipped(smoke, tmp_path):
    run = tmp_path / "results" / "corrupt"
    shutil.copytree(smoke["run_dir"], run)
    victim = next(run.glob("cnn.*.r1/result.json"))
    victim.write_text('{"schema_version": 1, "status": "ok"')  # cut short, as by a full disk
    index = write_report([run], tmp_path / "reports" / "corrupt")
    md = (index.parent / "summary.md").read_text()
    assert "**UNREADABLE RESULT (skipped)**" in md and str(victim) in md
    cnn = next(v for k, v in md_tables(md).items() if k.startswith("MNIST CNN"))
    assert cnn[0]["repeats"] == "1"


# ---------------------------------------------------------------------------------------------------------------
# compare


def compare(a: Path, b: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_py(["-m", "runner", "compare", str(a), str(b), *extra])


def test_compare_a_run_with_itself_finds_nothing(smoke, tmp_path):
    md = tmp_path / "compare.md"
    proc = compare(smoke["run_dir"], smoke["run_dir"], "--markdown", str(md))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 regression(s)" in proc.stdout and proc.stdout.count("1.00x") == len(MODELS)
    assert md.read_text().count("| within noise |") == len(MODELS)


def quiet(results: list[dict]):
    """The real run as a quiet machine would have timed it: every steady epoch at its cell's median (repeats
    pooled)."""
    medians = {m: expected(results)[m]["steady"] for m in MODELS}

    def doctor(r: dict) -> dict:
        for e in r["epochs"][1:]:
            e["wall_s"] = medians[r["cell"]["model"]]
        r["steady_epoch_s"] = medians[r["cell"]["model"]]
        mean_epoch = statistics.fmean(e["wall_s"] for e in r["epochs"])
        r["article_epoch_s"] = max(r["article_epoch_s"], mean_epoch)  # the whole fit still holds every epoch
        return r
    return doctor


def test_compare_flags_30_percent_slower_epochs(smoke, tmp_path):
    base = copy_run(smoke["run_dir"], tmp_path / "quiet", quiet(smoke["results"]))
    slow = copy_run(base, tmp_path / "slow", slower(1.3))
    proc = compare(base, slow, "--threshold", "0.05")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("1.30x") == proc.stdout.count("REGRESSION: slower") == len(MODELS)
    within = compare(base, copy_run(base, tmp_path / "bit", slower(1.04)), "--threshold", "0.05")
    assert within.returncode == 0 and within.stdout.count("within noise") == len(MODELS)


def test_compare_with_one_repeat_calls_drift_inconclusive(smoke, tmp_path):
    """One repeat per side: the spread between runs is not measured, so it is assumed (30 %). An unchanged rerun
    that drifted 20 % either way (as the JAX MLP did here: 2.95 vs 2.32 s/epoch) is inconclusive, exit 0; a
    threefold slowdown is still a regression."""
    single = only_repeat(0)
    base = single(smoke["run_dir"], tmp_path / "a")
    judged = []  # the spread each cell is judged against: 30 % assumed, or its within-run CV when larger (busy)
    for m in MODELS:
        (r0,) = [r for r in smoke["results"] if r["cell"]["model"] == m and r["cell"]["repeat"] == 0]
        steady = [e["wall_s"] for e in r0["epochs"][1:]]
        cv = statistics.stdev(steady) / statistics.fmean(steady)
        judged.append(f"±{max(0.30, cv) * 100:.1f} % ({'measured' if cv > 0.30 else 'assumed between runs'})")
    for factor, label in ((1.2, "1.20x"), (0.79, "0.79x")):
        drifted = single(smoke["run_dir"], tmp_path / f"drift-{factor}", slower(factor))
        md = tmp_path / f"drift-{factor}.md"
        proc = compare(base, drifted, "--markdown", str(md))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count(label) == len(MODELS) and proc.stdout.count("inconclusive (") == len(MODELS)
        assert "REGRESSION" not in proc.stdout and "faster" not in proc.stdout.replace("inconclusive (faster", "")
        assert f"0 regression(s) beyond noise, {len(MODELS)} inconclusive" in proc.stdout
        assert all(f"| {text} |" in md.read_text() for text in judged)
    proc = compare(base, single(smoke["run_dir"], tmp_path / "slow3", slower(3.0)))
    assert proc.returncode == 1 and proc.stdout.count("REGRESSION: slower") == len(MODELS)
    # a smaller assumed spread is an explicit choice: then 20 % is a verdict
    proc = compare(base, single(smoke["run_dir"], tmp_path / "drift-strict", slower(1.2)), "--between-run-spread",
                   "0.05")
    detectable = []
    for m in MODELS:  # the band is threshold + the larger of the given spread and the within-run CV
        (r0,) = [r for r in smoke["results"] if r["cell"]["model"] == m and r["cell"]["repeat"] == 0]
        steady = [e["wall_s"] for e in r0["epochs"][1:]]
        if 1.2 > 1 + 0.05 + max(0.05, statistics.stdev(steady) / statistics.fmean(steady)):
            detectable.append(m)
    assert proc.returncode == (1 if detectable else 0), proc.stdout
    assert proc.stdout.count("REGRESSION: slower") == len(detectable)
    assert compare(base, base, "--between-run-spread", "-1").returncode == 2


def test_compare_with_repeats_judges_by_the_spread_between_them(smoke, tmp_path):
    """Two repeats a side: the spread is measured between them. 25 % slower on average but with the repeats
    disagreeing (one 1.0x, one 1.5x: a CV of 28 %) is inconclusive; 30 % slower on both repeats of a quiet run is
    a regression (tested above), and so is a 3x slowdown of the real, noisy run (below)."""
    base = copy_run(smoke["run_dir"], tmp_path / "quiet", quiet(smoke["results"]))
    split = copy_run(base, tmp_path / "split", slower(1.5, repeat=1))
    md = tmp_path / "split.md"
    proc = compare(base, split, "--markdown", str(md))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("inconclusive (slower") == len(MODELS)
    assert md.read_text().count("| ±28.3 % (measured over 2+2 repeats) |") == len(MODELS)
    proc = compare(base, copy_run(base, tmp_path / "slow", slower(1.3)))
    assert proc.returncode == 1 and proc.stdout.count("REGRESSION: slower") == len(MODELS)


def test_compare_flags_a_threefold_slowdown_and_lost_accuracy(smoke, tmp_path):
    def worse(r: dict) -> dict:
        r["test"]["accuracy"] -= 0.2
        return r

    proc = compare(smoke["run_dir"], copy_run(smoke["run_dir"], tmp_path / "slow", slower(3.0)))
    assert proc.returncode == 1 and proc.stdout.count("REGRESSION: slower") == len(MODELS)
    proc = compare(smoke["run_dir"], copy_run(smoke["run_dir"], tmp_path / "worse", worse))
    assert proc.returncode == 1 and proc.stdout.count("REGRESSION: less accurate") == len(MODELS)
    faster = compare(smoke["run_dir"], copy_run(smoke["run_dir"], tmp_path / "fast", slower(0.3)))
    assert faster.returncode == 0 and faster.stdout.count("faster") == len(MODELS)


def test_compare_refuses_bad_input_and_unlabelled_mixed_hardware(smoke, tmp_path):
    assert compare(smoke["run_dir"], tmp_path / "nowhere").returncode == 2
    (tmp_path / "empty").mkdir()
    assert compare(smoke["run_dir"], tmp_path / "empty").returncode == 2

    def elsewhere(r: dict) -> dict:
        r["host"]["cpu_model"] = "Another CPU"
        return r

    other = copy_run(smoke["run_dir"], tmp_path / "other", elsewhere)
    proc = compare(smoke["run_dir"], other)
    assert proc.returncode == 2 and "different hardware" in proc.stderr
    proc = compare(smoke["run_dir"], other, "--allow-mixed")
    assert proc.returncode == 0 and "MIXED HARDWARE" in proc.stdout


# ---------------------------------------------------------------------------------------------------------------
# Statistics and reference data


@pytest.mark.parametrize(("n", "ranks"), [(5, None), (6, (1, 6)), (8, (1, 8)), (9, (2, 8)), (10, (2, 9)),
                                          (20, (6, 15))])
def test_median_interval_uses_order_statistics_with_at_least_95_percent_coverage(n, ranks):
    assert median_ci_ranks(n) == ranks
    if ranks:
        j = ranks[0]
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n
        assert coverage >= 0.95


def test_spread_and_time_to_target():
    s = spread([1.0, 1.2, 0.9, 1.1])
    assert (s.median, s.lo, s.hi, s.kind, s.n) == (1.05, 0.9, 1.2, "min-max", 4)
    assert s.cv == pytest.approx(statistics.stdev([1.0, 1.2, 0.9, 1.1]) / 1.05)
    assert spread([2.0]).kind == "single" and spread([]) is None
    assert time_to_target([3.0, 1.0, 1.0], [0.5, 0.97, 0.99], 0.97) == 4.0
    assert time_to_target([3.0, 1.0], [0.5, None], 0.97) is None


def _total_s(text: str) -> float:
    """'2 min 3 s' or '55.3 s' (as %timeit printed them) in seconds."""
    m = re.fullmatch(r"(?:(\d+) min )?([\d.]+) s", text.strip())
    return int(m.group(1) or 0) * 60 + float(m.group(2))


def test_article_figures_agree_with_the_matrix_and_their_sources():
    """Every 2017 figure names the notebook run it was read from; a figure taken from a %timeit total is that total
    / the epochs at the digits the article printed, and docs/article-2017.md (the repository's own account) shows
    the same figure. The corrections of the second reading of the notebooks stay corrected."""
    article = load_article()
    matrix = yaml.safe_load((REPO_ROOT / "matrix.yaml").read_text())
    doc = (REPO_ROOT / "docs" / "article-2017.md").read_text()
    assert article.source.reference == "docs/article-2017.md"
    assert article.hardware.peak_fp32_tflops == 4.37 and "K80" in article.hardware.device
    for short, full in article.source.commits.items():
        assert full.startswith(short) and len(full) == 40 and f"`{full}`" in doc
    checked = 0
    for model, test in article.tests.items():
        flop = float(matrix["models"][model]["flop_per_sample"])
        per_epoch = 3 * flop * test.train_samples + flop * test.validation_samples
        assert per_epoch == pytest.approx(test.flop_per_epoch, rel=0.02), model
        assert test.epochs == matrix["models"][model]["epochs"] and test.batch_size == matrix["models"][model][
            "batch_size"]
        row = next(line for line in doc.splitlines() if line.startswith(f"| {test.title} | "))
        for backend, fig in test.figures.items():
            assert fig.source, (model, backend)
            commit = re.match(r"[0-9a-f]{7}\b", fig.source)
            assert commit is None or commit.group(0) in article.source.commits, fig.source
            timed = re.search(r": ((?:\d+ min )?[\d.]+ s)(?: \+/- [\d.]+ s)? (?:/|per) (\d+)[ -]epoch", fig.source)
            if timed and fig.s_per_epoch is not None:
                total, epochs = _total_s(timed.group(1)), int(timed.group(2))
                digits = len(f"{fig.s_per_epoch:g}".split(".")[1]) if "." in f"{fig.s_per_epoch:g}" else 0
                # the article's rounding of total / epochs, half up (55.3 s / 20 = 2.765 -> 2.77)
                assert abs(total / epochs - fig.s_per_epoch) <= 0.5 * 10**-digits + 1e-9, (model, backend)
                checked += 1
            if fig.s_per_epoch is not None:
                assert f"{fig.s_per_epoch:g}" in row, (model, backend, row)
    assert checked == 13  # every number but Theano's, which only the article's text gives
    mlp, cnn, hrnn, babi = (article.tests[m].figures for m in ("mlp", "cnn", "hrnn", "babi_rnn"))
    assert mlp["tensorflow"].s_per_epoch == 2.77 and "a2b4536" in mlp["tensorflow"].note
    assert "-r 5" in mlp["mxnet"].source and "100 cumulative epochs" in mlp["mxnet"].note
    assert cnn["mxnet"].s_per_epoch is None and cnn["mxnet"].text.startswith("not run")
    assert hrnn["mxnet"].s_per_epoch == 160.4 and not hrnn["mxnet"].approx
    assert "10 cumulative epochs" in hrnn["tensorflow"].note and "10 cumulative epochs" in hrnn["cntk"].note
    assert babi["cntk"].accuracy == 0.291 and babi["tensorflow"].accuracy is None and ".326" in babi["tensorflow"].note
    assert "notebooks" in babi["theano"].note
    assert [b for b, _ in article.tests["mlp"].ranking()] == ["mxnet", "theano", "cntk", "tensorflow"]
    # models.md: the 2017 runs reached 2-10 % of the K80's peak, the CNN best
    share = {m: t.flop_per_epoch / t.figures["tensorflow"].s_per_epoch / 4.37e12 for m, t in article.tests.items()
             if m in ("mlp", "cnn", "cifar10_cnn", "hrnn")}
    assert max(share, key=share.get) == "cnn" and all(0.02 <= v <= 0.11 for v in share.values())


def test_a_2017_figure_without_a_source_is_refused(tmp_path):
    raw = yaml.safe_load((REPO_ROOT / "reports" / "article_2017.yaml").read_text())
    del raw["tests"]["mlp"]["figures"]["cntk"]["source"]
    bad = tmp_path / "article.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="source"):
        load_article.__wrapped__(bad)


def test_every_matrix_backend_finds_its_2017_figure(matrix):
    """The 2017 TensorFlow is `tensorflow1` in the matrix; each article backend must be reachable from a matrix one."""
    article = load_article()
    reachable = {article.figure_key(b) for b in matrix.backends}
    assert set(article.configurations) <= reachable
    assert article.tests["mlp"].figures[article.figure_key("tensorflow1")].s_per_epoch == 2.77
