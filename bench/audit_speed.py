"""Contamination-audit scoring speed: items/s on CPU vs lm-eval (`hf` model, its own venv
bench/_work/lmeval-venv) on the same tiny local model and items, and score agreement.
Wraps babelmill.contamination.bench.

    python -m bench.audit_speed [--json OUT]
"""

import sys

from babelmill.contamination.bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
