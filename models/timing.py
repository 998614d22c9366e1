"""One timing callback for every backend and Keras generation.

It only overrides epoch- and test-level hooks: overriding a batch-end hook would switch off Keras 3's asynchronous
callback dispatch and add work to every step. Per epoch it keeps wall time (perf_counter), process CPU time
(all threads) and the validation pass's share; statistics are computed after training, not between epochs.
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


def make_epoch_timer(keras, events, normalize_metric):
    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super(EpochTimer, self).__init__()
            self.epochs = []
            self.train_started_at = None
            self.train_begin_perf = None  # perf_counter at on_train_begin: fit's build before it is build_fn_s
            self.fit_params = {}
            self._wall0 = self._cpu0 = self._val0 = None
            self._val_s = None

        def on_train_begin(self, logs=None):
            self.train_started_at = time.time()
            self.train_begin_perf = time.perf_counter()
            # what Keras itself was told per epoch (Keras 1 says nb_sample; Keras 2's fit of arrays gives no steps)
            params = self.params or {}
            self.fit_params = {"steps": params.get("steps"), "samples": params.get("samples", params.get("nb_sample"))}

        def on_epoch_begin(self, epoch, logs=None):
            self._val_s = None
            self._wall0 = time.perf_counter()
            self._cpu0 = time.process_time()

        def on_test_begin(self, logs=None):
            self._val0 = time.perf_counter()

        def on_test_end(self, logs=None):
            # validation inside fit: Keras 3 reports it through these hooks; Keras 2.0.8/1.2.2 never call them
            # from fit, so their epochs keep val_s None (known, not zero)
            if self._wall0 is not None:
                self._val_s = time.perf_counter() - self._val0

        def on_epoch_end(self, epoch, logs=None):
            wall = time.perf_counter() - self._wall0
            cpu = time.process_time() - self._cpu0
            self._wall0 = None
            record = {"epoch": epoch + 1, "wall_s": wall, "cpu_s": cpu, "val_s": self._val_s}
            for key, value in (logs or {}).items():
                record[normalize_metric(key)] = float(value)
            self.epochs.append(record)
            of = self.params.get("epochs", self.params.get("nb_epoch"))  # Keras 1 says nb_epoch
            events.emit(kind="epoch", epoch=epoch + 1, of=of, wall_s=wall,
                        loss=record.get("loss"), accuracy=record.get("accuracy"))

    return EpochTimer()
