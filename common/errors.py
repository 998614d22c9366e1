"""The one base class of every error that means "your input is wrong, here is the fix": exit status 2.

Command lines catch `BadInput` and nothing broader, so a bug in the project (a KeyError, a ValueError from deep
inside) prints its traceback and exits 1 instead of posing as a typo in the user's options.
"""

from __future__ import annotations


class BadInput(Exception):
    """Input the user can fix (matrix.yaml, options, run folders); the message names the problem and the fix."""
