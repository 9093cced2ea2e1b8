"""`babelmill` command line: one entry point, one subcommand per job.

Messages: every module logs to its own logger (`logging.getLogger(__name__)`, under
`babelmill`); main() sets their level once: INFO by default (what a run is doing), `-q` WARNING
(only what needs a look), `-v` DEBUG. They go to stderr, one short line each; stdout is left to
what a command prints as its result. Other libraries' loggers stay at WARNING.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    """Every subsystem registers its subcommands the same way: `<package>.cli.register(sub)`."""
    from babelmill.contamination.cli import register as register_audit
    from babelmill.pipeline.cli import register as register_pipeline
    from babelmill.pretrain.cli import register as register_pretrain
    from babelmill.tokenizer.cli import register as register_tokenizer

    ap = argparse.ArgumentParser(prog="babelmill", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    loud = ap.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_const", dest="verbosity", const=1, default=0,
                      help="debug messages too")
    loud.add_argument("-q", "--quiet", action="store_const", dest="verbosity", const=-1,
                      help="warnings and errors only")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for register in (register_pipeline, register_tokenizer, register_pretrain, register_audit):
        register(sub)
    return ap


LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is when a message comes (as logging's own
    last-resort handler does), so that a replaced sys.stderr is honoured."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _ShortFormatter(logging.Formatter):
    """`babelmill: message` for information, `babelmill: warning: message` otherwise (as errors
    read `babelmill: error: ...`); other libraries' messages and -v name their logger."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        ours = record.name == "babelmill" or record.name.startswith("babelmill.")
        who = "babelmill" if ours and not self.verbose else record.name
        if record.levelno == logging.INFO and ours:
            return f"{who}: {msg}"
        return f"{who}: {record.levelname.lower()}: {msg}"


def configure_logging(verbosity: int = 0) -> None:
    """Level of babelmill's loggers: -1 WARNING (-q), 0 INFO, 1 DEBUG (-v). A stderr handler is
    installed on the root logger unless the process already configured logging (a program
    embedding babelmill, pytest), whose handlers are then used as they are."""
    logging.getLogger("babelmill").setLevel(LEVELS[max(-1, min(1, verbosity))])
    root = logging.getLogger()
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_ShortFormatter(verbose=verbosity > 0))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)  # other libraries: warnings only, -v or not


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbosity)
    from babelmill.errors import run_command

    # The one place where errors that mean "fix your input, config, run directory or
    # checkpoint" become one line and exit code 2, for every subcommand (subsystem CLIs catch
    # nothing). Every other exception is a bug and keeps its traceback.
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
