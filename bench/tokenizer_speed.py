"""Tokenizer speed: batch-encode throughput on one core and training time, on the UDHR demo
corpus (built first if missing). Wraps bench/tokenizer_throughput.py.

    python -m bench.tokenizer_speed [--json OUT]
"""

import os
import sys

# One core: must be set before `tokenizers` is first imported (it binds its thread pool then).
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from bench.tokenizer_throughput import main as bench_main  # noqa: E402
from demo.corpus import build_demo_corpus  # noqa: E402

if __name__ == "__main__":
    build_demo_corpus("data/demo")
    args = sys.argv[1:]
    if "--input" not in args:
        args = ["--input", "data/demo/raw", *args]
    raise SystemExit(bench_main(args))
