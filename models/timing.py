"""One timing clock for every backend, Keras generation and native twin.

`EpochClock` keeps the raw samples: per epoch wall time (perf_counter), process CPU time (all threads) and the
validation pass's share; statistics are computed after training, not between epochs. Keras drives it through a
callback that overrides only epoch- and test-level hooks (a batch-end hook would switch off Keras 3's asynchronous
callback dispatch and add work to every step); a native training loop calls the same methods itself, so both
sides of a Keras-against-native comparison are timed by the same code at the same points.

Keras 2.0.8 and 1.2.2 never call the test hooks from fit: there the callback times the validation pass from the
end of the epoch's last batch (`on_batch_end`, which those generations call for every batch anyway, so one more
trivial callback adds no dispatch) to `on_epoch_end`. Keras 3 on JAX returns from its training calls before
their work is done, so the validation clock starts once that work is (models/queued.py).
"""
import json
import time


class EventLog(object):
    """Progress lines for the runner (one JSON object per line, flushed): stage changes and finished epochs."""

    def __init__(self, path):
        self.handle = open(path, "a", buffering=1) if path else None

    def emit(self, **event):
        if self.handle is not None:
            event["t"] = time.time()
            self.handle.write(json.dumps(event) + "\n")

    def close(self):
        if self.handle is not None:
            self.handle.close()


class EpochClock(object):
    """The epochs of one training run, measured at the same points whoever drives it."""

    def __init__(self, events, epochs_planned=None):
        self.events = events
        self.epochs_planned = epochs_planned
        self.epochs = []
        self.train_started_at = None  # time.time() at the start of training (the timeline's first batch)
        self.train_begin_perf = None  # perf_counter there: what fit did before it is build_fn_s
        self._wall0 = self._cpu0 = self._val0 = None
        self._val_s = None

    def train_begin(self):
        self.train_started_at = time.time()
        self.train_begin_perf = time.perf_counter()

    def epoch_begin(self):
        self._val_s = None
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def validation_begin(self, at=None):
        """`at`: a perf_counter reading taken earlier (the last batch's end), else now."""
        if self._wall0 is not None:
            self._val0 = time.perf_counter() if at is None else at

    def validation_end(self):
        if self._wall0 is not None and self._val0 is not None:
            self._val_s = time.perf_counter() - self._val0
            self._val0 = None

    def epoch_end(self, metrics):
        """`metrics`: name -> float (loss, accuracy, val_loss, val_accuracy, anything else the trainer logs)."""
        wall = time.perf_counter() - self._wall0
        cpu = time.process_time() - self._cpu0
        self._wall0 = None
        record = {"epoch": len(self.epochs) + 1, "wall_s": wall, "cpu_s": cpu, "val_s": self._val_s,
                  "extra_metrics": {}}
        for key, value in metrics.items():
            if key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                record[key] = float(value)
            else:
                record["extra_metrics"][key] = float(value)
        self.epochs.append(record)
        self.events.emit(kind="epoch", epoch=record["epoch"], of=self.epochs_planned, wall_s=wall,
                         loss=record.get("loss"), accuracy=record.get("accuracy"))
        return record


def make_epoch_timer(keras, clock, normalize_metric, generation, wait_queued=None):
    """A Keras callback driving `clock`; `generation` (1, 2 or 3) decides how the validation pass is seen;
    `wait_queued(model)` (models/queued.py) waits for training steps an asynchronous backend has not yet run."""
    base = keras.callbacks.Callback

    class EpochTimer(base):
        def __init__(self):
            super(EpochTimer, self).__init__()
            self.clock = clock
            self.fit_params = {}
            self._last_batch_end = None

        def on_train_begin(self, logs=None):
            clock.train_begin()
            # what Keras itself was told per epoch (Keras 1 says nb_sample; Keras 2's fit of arrays gives no steps)
            params = self.params or {}
            self.fit_params = {"steps": params.get("steps"), "samples": params.get("samples", params.get("nb_sample"))}
            clock.epochs_planned = params.get("epochs", params.get("nb_epoch"))  # Keras 1 says nb_epoch

        def on_epoch_begin(self, epoch, logs=None):
            self._last_batch_end = None
            clock.epoch_begin()

        def on_test_begin(self, logs=None):
            if wait_queued is not None and self.model is not None:
                wait_queued(self.model)  # the epoch's training steps are done: validation starts here
            clock.validation_begin()

        def on_test_end(self, logs=None):
            clock.validation_end()

        def on_epoch_end(self, epoch, logs=None):
            if generation < 3 and self._last_batch_end is not None and self._has_validation(logs):
                clock.validation_begin(at=self._last_batch_end)
                clock.validation_end()
            clock.epoch_end(dict((normalize_metric(k), v) for k, v in (logs or {}).items()))

        @staticmethod
        def _has_validation(logs):
            return any(k.startswith("val_") for k in (logs or {}))

    if generation < 3:
        def on_batch_end(self, batch, logs=None):
            self._last_batch_end = time.perf_counter()

        EpochTimer.on_batch_end = on_batch_end
    return EpochTimer()
