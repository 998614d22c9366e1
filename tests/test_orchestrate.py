"""The run loop in seconds: `run_cells` through ok, crash, timeout, an executor's error, interrupt and resume,
with an in-process executor that behaves as the real ones do (README, "When things go wrong"), no environment.

The stand-in executor's handle plays a worker: it writes the events a worker writes, then either a worker result
completed from the spec's own `result_template` (the host's one result constructor) and exits 0, or dies by a
signal without a result, or hangs until it is killed, or its executor raises while the loop watches it. The real
executors keep their own tests (test_venv_executor, test_docker, test_slurm, test_kubernetes, test_faults).
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from common.results import Status, iter_results
from runner.cells import Selection, plan
from runner.executors.base import CellHandle, CellJob, Executor, PreparedEnv
from runner.matrix import load_matrix
from runner.orchestrate import RunOptions, run_cells
from runner.paths import REPO_ROOT
from runner.progress import Display

MATRIX = load_matrix(REPO_ROOT / "matrix.yaml")


def worker_result(spec: dict) -> dict:
    """What a worker that trained three epochs writes: the spec's own skeleton, completed."""
    result = copy.deepcopy(spec["result_template"])
    epochs = [{"epoch": i + 1, "wall_s": w, "cpu_s": w * 1.9, "val_s": 0.01, "samples": 256, "loss": 2.0,
               "accuracy": 0.1} for i, w in enumerate([0.9, 0.3, 0.31])]
    result.update(
        status="ok", stage="done", params=669706, epochs=epochs, first_epoch_s=0.9, steady_epoch_s=0.305,
        steady_epochs=2, compile_s=0.6, article_epoch_s=0.51, build_fn_s=0.0,
        test={"loss": 2.0, "accuracy": 0.1, "samples": 128},
        data={"source": "synthetic", "sha256": "0" * 64, "dataset": "mnist", "train_samples": 256,
              "test_samples": 128},
        work={"train_samples": 256, "val_samples": 128, "batch_size": 128, "epochs": 3, "data": "synthetic"},
        settings={"variant": spec["variant"]["name"], "data_format": "channels_last", "jit_compile": "auto"},
        timeline={"process_cpu_s": 1.0},
    )
    return result


class FakeHandle(CellHandle):
    """One cell's worker, played by a thread: `behaviour` is ok, crash, hang or watch-error."""

    def __init__(self, job: CellJob, behaviour: str):
        self.job, self.behaviour = job, behaviour
        self.code: int | None = None
        self.killed = threading.Event()
        self.hanging = threading.Event()  # set once a hanging worker has reported its last stage
        self.watched = threading.Event()  # ... and the run loop has since waited on it: the cell is among its running
        self.spec = json.loads(job.spec_path.read_text())
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _event(self, **event) -> None:
        with open(self.spec["paths"]["events"], "a") as handle:
            handle.write(json.dumps({**event, "t": time.time()}) + "\n")

    def _work(self) -> None:
        for stage in ("start", "import", "data", "build", "train"):
            self._event(kind="stage", stage=stage)
        if self.behaviour == "hang":
            self.hanging.set()
            self.killed.wait(60)
            return
        if self.behaviour == "crash":
            self.code = -11  # a segfault in the framework: no result written
            return
        self._event(kind="epoch", epoch=1, of=3, wall_s=0.9)
        Path(self.spec["paths"]["result"]).write_text(json.dumps(worker_result(self.spec)))
        self.code = 0

    def wait(self, timeout: float) -> int | None:
        if self.hanging.is_set():
            self.watched.set()
        if self.behaviour == "watch-error":
            raise ConnectionError("the scheduler's API answered 500")
        self.thread.join(timeout)
        return self.code

    def kill(self) -> None:
        self.killed.set()
        if self.code is None:
            self.code = -9

    def info(self) -> dict:
        return {"pid": 4242}


class FakeExecutor(Executor):
    """Runs each cell as its model's behaviour says; counts launches so a resume can be told apart."""

    name = "venv"  # results say which executor ran them; the stand-in plays the local one

    def __init__(self, behaviours: dict[str, str], interrupt_on: str | None = None):
        self.behaviours, self.interrupt_on = behaviours, interrupt_on
        self.launched: list[str] = []
        self.handles: dict[str, FakeHandle] = {}  # model -> its handle, for a test to wait on
        self.started = threading.Condition()

    def plan(self, name, env):
        return {"environment": name}

    def prepare(self, name, env, on_status):
        return PreparedEnv(name, env, f"in-process:{name}", True, 0.0)

    def launch(self, prepared, job):
        cell_id = job.cell_dir.name
        self.launched.append(cell_id)
        if self.interrupt_on and cell_id.startswith(self.interrupt_on):
            raise KeyboardInterrupt  # Ctrl-C while this cell starts
        model = cell_id.split(".")[0]
        handle = FakeHandle(job, self.behaviours.get(model, "ok"))
        with self.started:
            self.handles[model] = handle
            self.started.notify_all()
        return handle

    def hanging(self, model: str, timeout: float) -> bool:
        """Wait until `model`'s worker has reported that it runs (and hangs there) and the loop watches it."""
        with self.started:
            if not self.started.wait_for(lambda: model in self.handles, timeout):
                return False
        return self.handles[model].watched.wait(timeout)


def cells(*models: str):
    return plan(MATRIX, Selection(models=models, backends=("jax@keras",), profile="smoke"))[0]


def run(tmp_path: Path, executor: FakeExecutor, planned, resume: Path | None = None, timeout_s: float | None = None):
    console = Console(file=io.StringIO(), width=120)
    options = RunOptions(tmp_path / "results", "synthetic", timeout_s=timeout_s, resume=resume)
    with Display(console) as display:
        return run_cells(MATRIX, planned, executor, options, display)


def statuses(run_dir: Path) -> dict[str, Status]:
    return {r.cell.model: r.status for _, r in iter_results(run_dir)}


def test_ok_crash_timeout_and_an_executor_error_each_get_their_result_and_the_run_goes_on(tmp_path):
    executor = FakeExecutor({"cnn": "crash", "hrnn": "hang", "babi_rnn": "watch-error"})
    outcome = run(tmp_path, executor, cells("mlp", "cnn", "hrnn", "babi_rnn", "cifar10_cnn"), timeout_s=1.0)
    by_model = {r.cell.model: r for r in outcome.results}
    assert statuses(outcome.run_dir) == {m: r.status for m, r in by_model.items()}  # on disk as returned
    assert by_model["mlp"].status is Status.ok and by_model["mlp"].executor.pid == 4242
    assert by_model["cnn"].status is Status.failed
    assert by_model["cnn"].error == "worker killed by signal SIGSEGV in stage train without writing a result"
    assert by_model["hrnn"].status is Status.timeout and "timed out after 1 s in stage train" in by_model["hrnn"].error
    assert by_model["babi_rnn"].status is Status.failed
    assert "the executor failed while watching the cell: ConnectionError" in by_model["babi_rnn"].error
    assert by_model["cifar10_cnn"].status is Status.ok  # after all that, the last cell still ran
    assert {r.cell_id for r in outcome.failed} == {by_model[m].cell_id for m in ("cnn", "hrnn", "babi_rnn")}
    manifest = json.loads((outcome.run_dir / "run.json").read_text())
    assert manifest["interrupted"] is None and manifest["finished_at"]


def test_an_interrupt_stops_the_running_cell_records_it_and_keeps_what_finished(tmp_path):
    executor = FakeExecutor({}, interrupt_on="cnn")
    outcome = run(tmp_path, executor, cells("mlp", "cnn", "hrnn"))
    assert outcome.interrupted is not None and outcome.interrupted.model == "cnn"
    assert statuses(outcome.run_dir) == {"mlp": Status.ok}  # nothing after the interrupt started
    manifest = json.loads((outcome.run_dir / "run.json").read_text())
    assert manifest["interrupted"].startswith("cnn.") and manifest["finished_at"]


def test_an_interrupt_while_a_cell_runs_records_it_as_interrupted(tmp_path):
    """Ctrl-C once cnn's worker says it runs (an event, not a timer: a loaded machine may take any time to get
    there). A suite started in the background (`make test &`, a CI runner) inherits SIGINT ignored, which Python
    keeps: the test gives this process Ctrl-C's usual meaning for its duration, as a terminal would."""
    executor = FakeExecutor({"cnn": "hang"})
    planned = cells("mlp", "cnn")
    waited: list[bool] = []

    def interrupt_once_cnn_runs() -> None:
        waited.append(executor.hanging("cnn", timeout=300))
        os.kill(os.getpid(), signal.SIGINT)  # also when the wait failed: the run must not hang the suite

    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    sender = threading.Thread(target=interrupt_once_cnn_runs, daemon=True)
    sender.start()
    try:
        outcome = run(tmp_path, executor, planned)
    finally:
        sender.join(10)
        signal.signal(signal.SIGINT, saved)
    assert waited == [True], "cnn's worker never reported that it runs"
    assert statuses(outcome.run_dir) == {"mlp": Status.ok, "cnn": Status.interrupted}
    cnn = next(r for _, r in iter_results(outcome.run_dir) if r.cell.model == "cnn")
    assert cnn.stage == "train" and "interrupted in stage train" in cnn.error


def test_resume_keeps_finished_cells_and_runs_the_rest(tmp_path):
    planned = cells("mlp", "cnn", "hrnn")
    first = run(tmp_path, FakeExecutor({"cnn": "crash"}), planned)
    assert statuses(first.run_dir) == {"mlp": Status.ok, "cnn": Status.failed, "hrnn": Status.ok}
    again = FakeExecutor({})
    second = run(tmp_path, again, planned, resume=first.run_dir)
    assert [c.split(".")[0] for c in again.launched] == ["cnn"]  # only the failed cell ran again
    assert statuses(second.run_dir) == {"mlp": Status.ok, "cnn": Status.ok, "hrnn": Status.ok}
    assert len(list((first.run_dir / ".attempts").iterdir())) == 1  # the failed attempt kept, never deleted


def test_run_json_says_utc_under_another_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        outcome = run(tmp_path, FakeExecutor({}), cells("mlp"))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    manifest = json.loads((outcome.run_dir / "run.json").read_text())
    now = datetime.datetime.now(datetime.UTC)
    for key in ("started_at", "finished_at"):
        stamp = datetime.datetime.strptime(manifest[key], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        assert abs((now - stamp).total_seconds()) < 120, (key, manifest[key])


def test_a_kill_that_fails_is_said_and_recorded(tmp_path):
    class Stubborn(FakeHandle):
        def kill(self) -> None:
            raise PermissionError("operation not permitted")

    class StubbornExecutor(FakeExecutor):
        def launch(self, prepared, job):
            self.launched.append(job.cell_dir.name)
            return Stubborn(job, "hang")

    outcome = run(tmp_path, StubbornExecutor({}), cells("mlp"), timeout_s=0.5)
    (result,) = outcome.results
    assert result.status is Status.timeout
    assert result.executor.kill_error == "PermissionError: operation not permitted"


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch):
    """Poll the stand-in as often as the real loop would, but let a hung cell's timeout pass in a second."""
    monkeypatch.setattr("runner.orchestrate.POLL_S", 0.1)
