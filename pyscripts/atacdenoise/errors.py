"""The one exception type users see.

Every problem with user input is raised as :class:`InputError`; the CLI turns it
into a single line ``atacdenoise: error: <file>: <problem>`` and exit status 2.
"""

from __future__ import annotations

import os


class InputError(Exception):
    """Bad user input: names the offending file (when there is one) and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
