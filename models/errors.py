"""Exceptions the worker maps to result statuses; dependency-free so the worker can import them before numpy."""


class DataUnavailable(RuntimeError):
    """Real data is neither cached nor downloadable; the message says which file to place where (-> skipped)."""
