"""The one base class of babelmill's domain errors.

A domain error means "fix your input, config, run directory or checkpoint": `babelmill`
prints it as one line (`babelmill: error: ...`) and exits with code 2, in one place
(babelmill/cli.py). Anything else is a bug and keeps its traceback. Subclasses also derive
from the builtin they refine (ValueError, RuntimeError, OSError) so that callers catching
those keep working.
"""

from __future__ import annotations


class BabelmillError(Exception):
    """Base class of the errors a user can fix; its message names the file (and line) at fault."""


def error_line(e: BaseException) -> str:
    """The one form every subcommand prints a user error in: `babelmill: error: ...` on one line
    (the lines of a multi-line message joined by "; ")."""
    return "babelmill: error: " + "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
