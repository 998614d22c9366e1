"""Exceptions the worker maps to result statuses; dependency-free so the worker can import them before numpy."""


class DataUnavailable(RuntimeError):
    """Real data is neither cached nor downloadable; the message says which file to place where (-> skipped)."""


class RequirementMissing(RuntimeError):
    """A package the cell's driver needs is not installed in the interpreter (-> skipped, with the install line)."""
