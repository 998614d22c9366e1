"""UTC timestamps: every time a result or run.json records is UTC with a `Z`, whatever the machine's TZ is.

`time.strftime` formats local time, so a `Z` after it lies on any machine not set to UTC; these helpers format
`time.gmtime` only. Run ids use the same clock, so two machines in two time zones name runs consistently.
"""

from __future__ import annotations

import time

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def utc_stamp(epoch_s: float | None = None) -> str:
    """`2026-12-02T11:44:00Z` for `epoch_s` (seconds since the epoch; default: now)."""
    return time.strftime(STAMP, time.gmtime(time.time() if epoch_s is None else epoch_s))


def utc_compact(epoch_s: float | None = None) -> str:
    """`20261202-114400`: the sortable form run ids start with."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if epoch_s is None else epoch_s))
