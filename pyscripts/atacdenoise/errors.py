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


class NoSpaceLeft(InputError):
    """The filesystem filled up while writing an output; the CLI reports it like bad input (exit 2)."""

    def __init__(self, output: str | os.PathLike):
        super().__init__(None, f"no space left on device writing {os.fspath(output)}")
        self.output = os.fspath(output)
