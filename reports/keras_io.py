"""The keras.io suite in a report: our figures as keras.io reports them, and keras.io's own beside same-configuration
cells only.

A suite cell (models/hub.py) carries keras.io's ms/step (its 100-step window) beside our steady epochs, generation's
time to first token and ms per token, peak memory and inference. keras.io's published figures
(`reports/keras_io.yaml`) were taken on one A100 40 GB at its own sizes: they appear only beside cells whose work is
the suite's `keras-io` configuration, and every such row names the hardware difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from common.display import display_order
from common.results import CellResult
from reports import fmt
from reports.hardware import describe as describe_host

KERAS_IO_FILE = Path(__file__).with_name("keras_io.yaml")
KERAS_IO_CONFIG = "keras-io"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Figure(_Strict):
    task: Literal["fit", "predict", "generate"]
    batch_size: int = Field(ge=1)
    ours: Literal["keras_io_fit", "predict_step", "generate_call"]
    ms: dict[str, float]  # keras.io's figure per Keras backend (the backends' names as matrix.yaml has them)
    note: str | None = None


class Hardware(_Strict):
    name: str
    device: str
    kind: str
    match: str
    cpu: str
    memory_gb: float


class KerasIo(_Strict):
    schema_version: Literal[1]
    source: dict[str, str]
    hardware: Hardware
    method: str
    figures: dict[str, list[Figure]]

    def citation(self) -> str:
        return (f"keras.io, \"{self.source['title']}\" ({self.source['page']}; {self.source['file']}; code "
                f"{self.source['code']}; {self.source['date']})")


def load_keras_io(path: Path = KERAS_IO_FILE) -> KerasIo:
    return KerasIo.model_validate(yaml.safe_load(path.read_text()))


def ours(result: CellResult, figure: Figure) -> float | None:
    """Our figure in keras.io's unit (ms per step, or per generate() call) at keras.io's batch size."""
    suite = result.suite
    if figure.ours == "keras_io_fit":
        fit = suite.keras_io_fit if suite else None
        return fit.ms_per_step if fit and result.work and result.work.batch_size == figure.batch_size else None
    if figure.ours == "predict_step":
        for run in (result.inference.throughput if result.inference else []):
            if run.batch_size == figure.batch_size and run.samples_per_s:
                return figure.batch_size / run.samples_per_s * 1e3
        return None
    for run in (suite.generate.runs if suite and suite.generate else []):
        if run.batch_size == figure.batch_size:
            return run.generate_call_ms
    return None


def window_share(result: CellResult) -> float | None:
    """keras.io's fit window as a share of the device's peak for the arithmetic the cell ran: a training step's FLOP
    (counted for the configuration, recorded by the cell) x batch / the window's seconds per step / the peak."""
    suite = result.suite
    fit = suite.keras_io_fit if suite else None
    if not (fit and fit.ms_per_step and suite.train_flop_per_sample and result.work):
        return None
    precision = result.settings.precision if result.settings else None
    peak = describe_host(result.host.model_dump(), precision.effective if precision else None)[2]
    if not peak:
        return None
    return suite.train_flop_per_sample * result.work.batch_size / (fit.ms_per_step / 1e3) / (peak * 1e12)


def device_of(result: CellResult) -> str:
    """The device the model's weights lived on: the GPU's name where one was used, else the CPU's."""
    gpu = result.host.gpu
    if gpu.used and gpu.devices:
        return gpu.devices[0]
    return f"CPU ({result.host.cpu_model or 'unknown'})"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def suite_lines(results: Iterable[CellResult], reference: KerasIo | None = None) -> list[str]:
    """The report's keras.io suite section (markdown lines); empty without suite cells."""
    suite = [r for r in results if r.suite is not None and r.status.value == "ok"]
    if not suite:
        return []
    reference = reference or load_keras_io()
    out = ["## The keras.io suite (KerasHub models, random weights, synthetic data)", "",
           "keras.io's unit beside ours: ms/step over keras.io's window (steps 1..100 of the first epoch, the first "
           "step excluded) next to our steady epoch; generation as time to first token and ms per further token. "
           "One table per model and configuration (the configuration is part of the work: a small CPU "
           "configuration is never set beside keras.io's figures).", ""]
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for r in suite:
        groups.setdefault((r.cell.model, r.work.config if r.work else ""), []).append(r)
    for (model, config), rows in sorted(groups.items()):
        name = rows[0].suite.config_name
        out += [f"### {model}, configuration {config} (KerasHub {rows[0].suite.keras_hub})", ""]
        header = ["backend", "params", "keras.io ms/step (fit)", "share of peak (fit)", "steady epoch s",
                  "peak RSS MB", "GPU peak MB",
                  "predict p50 ms (batch 1)", "TTFT ms", "ms/token"]
        body = []
        for r in sorted(rows, key=lambda r: (r.cell.backend, r.cell.repeat)):
            gen = r.suite.generate.runs[0] if r.suite.generate and r.suite.generate.runs else None
            lat = r.inference.latency_of() if r.inference and r.inference.latency else None
            body.append([r.cell.backend, f"{r.params:,}" if r.params else "",
                         _fmt(r.suite.keras_io_fit.ms_per_step if r.suite.keras_io_fit else None),
                         fmt.share(window_share(r)), _fmt(r.steady_epoch_s, 3),
                         _fmt(r.memory.peak_rss_mb if r.memory else None, 0),
                         _fmt(r.memory.gpu_peak_mb if r.memory else None, 0), _fmt(lat.p50_ms if lat else None, 2),
                         _fmt(gen.time_to_first_token_ms if gen else None), _fmt(gen.ms_per_token if gen else None, 2)])
        out += _table(header, body) + [""]
        figures = reference.figures.get(model, [])
        if name == KERAS_IO_CONFIG and figures:
            devices = sorted({device_of(r) for r in rows})
            out += [f"Beside keras.io's figures (ms per step, lower is better). Hardware differs: keras.io ran one "
                    f"{reference.hardware.device} ({reference.hardware.name}); these cells ran on "
                    f"{', '.join(devices)}.", ""]
            body = []
            for fig in figures:
                for backend in display_order(list(fig.ms)):
                    mine = [v for v in (ours(r, fig) for r in rows if r.cell.backend == backend) if v is not None]
                    theirs = fig.ms.get(backend)
                    body.append([f"{fig.task} (batch {fig.batch_size})", backend, _fmt(theirs, 2),
                                 _fmt(min(mine), 2) if mine else "not measured",
                                 f"{min(mine) / theirs:.2f}" if mine and theirs else "", fig.note or ""])
            out += _table(["task", "backend", "keras.io ms", "ours ms", "ours / keras.io", "note"], body) + [""]
            out += [f"Source: {reference.citation()}. Method: {' '.join(reference.method.split())}.", ""]
        elif figures:
            out += [f"keras.io's figures for {model} are for its `keras-io` configuration only (`./kbm --profile "
                    "keras-io`); not shown beside this one.", ""]
    return out


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(str(c) for c in row) + " |" for row in rows]]


def lines_html(lines: list[str]) -> str:
    """The section's markdown lines as HTML (headings, paragraphs, tables), for index.html beside summary.md."""
    out, table = [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            table.clear()

    for line in lines:
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("### "):
            out.append(f"<h3>{escape(line[4:])}</h3>")
        elif line.startswith("## "):
            out.append(f'<h2 id="keras-io-suite">{escape(line[3:])}</h2>')
        elif line:
            out.append(f"<p>{escape(line)}</p>")
    flush()
    return f"<section>{''.join(out)}</section>" if out else ""
