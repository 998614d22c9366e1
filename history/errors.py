"""The one error history/ raises for bad input: its message names the problem and the fix (exit status 2)."""

from __future__ import annotations


class HistoryError(ValueError):
    """No history where one was named, an unreachable or foreign database, an unknown series, a bad folder."""
