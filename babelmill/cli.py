"""`babelmill` command line: one entry point, one subcommand per job."""

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

    ap = argparse.ArgumentParser(prog="babelmill", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for register in (register_pipeline, register_tokenizer, register_pretrain, register_audit):
        register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from babelmill.errors import BabelmillError, error_line

    # The one place where errors that mean "fix your input, config, run directory or
    # checkpoint" (babelmill.errors.BabelmillError) become one line and exit code 2, for every
    # subcommand. FileNotFoundError: a missing input or run directory (the message names the
    # path). Every other exception is a bug and keeps its traceback.
    try:
        return args.func(args)
    except (BabelmillError, FileNotFoundError) as e:
        print(error_line(e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
