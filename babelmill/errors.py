"""The one base class of babelmill's domain errors.

A domain error means "fix your input, config, run directory or checkpoint": it is printed as
one line (`babelmill: error: ...`) with exit code 2 in one place, `run_command` below, which
babelmill/cli.py runs every subcommand through (and so do the few `python -m` entries that
other processes start, e.g. `python -m babelmill.pretrain.cli` on every torchrun rank).
Subsystem CLIs catch nothing themselves. Anything else is a bug and keeps its traceback.
Subclasses also derive from the builtin they refine (ValueError, RuntimeError, OSError) so
that callers catching those keep working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class BabelmillError(Exception):
    """Base class of the errors a user can fix; its message names the file (and line) at fault."""


def error_line(e: BaseException) -> str:
    """The one form every subcommand prints a user error in: `babelmill: error: ...` on one line
    (the lines of a multi-line message joined by "; ")."""
    return "babelmill: error: " + "; ".join(line.strip() for line in str(e).splitlines() if line.strip())


#: What `run_command` turns into one line and exit code 2: the domain errors, and a missing file
#: (a FileNotFoundError's message names the path; an input, config or model named on the command
#: line that is not there). Nothing broader: a ValueError or OSError of a bug must keep its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (BabelmillError, FileNotFoundError)


def run_command(func: Callable[..., int], *args) -> int:
    """`func(*args)` (a subcommand; returns its exit code), with a user error printed as
    `error_line` on stderr and exit code 2: the one place babelmill handles errors."""
    try:
        return func(*args)
    except USER_ERRORS as e:
        print(error_line(e), file=sys.stderr)
        return 2
