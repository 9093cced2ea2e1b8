"""babelmill.text: the word definition across scripts, the hash mixers pinned to the outputs
they had before they were gathered into one module (dedup signatures and band keys are stored
data and must not move), and each normaliser's known outputs."""

import re
import sys
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from numba import njit

from babelmill import text
from babelmill.pipeline.dedup import hashing, minhash, near
from babelmill.pipeline.stages.quality import QualityRules, compute_stats

# words whose vowel signs / viramas are combining marks (Mn or Mc): `\w+` cuts all four apart
HINDI = "हिन्दी"  # ि (Mc), ् (Mn), ी (Mc)
TAMIL = "தமிழ்"  # ி (Mc), ் (Mn)
THAI = "ที่ดี"  # ี ่ ี (Mn)
MYANMAR = "မြန်မာ"  # ြ (Mc), ် (Mn), ာ (Mc)


@pytest.mark.parametrize("word", [HINDI, TAMIL, THAI, MYANMAR])
def test_a_word_keeps_its_vowel_signs(word):
    assert any(unicodedata.category(ch)[0] == "M" for ch in word)
    assert len(re.findall(r"\w+", word)) > 1  # the old definition of language ID
    assert text.words(word) == [word]
    assert text.words(f"«{word}», {word}!") == [word, word]


def test_python_words_match_the_arrow_pattern():
    """`words` (Python) and `WORD_SEP` (RE2, the quality stage) cut the same text the same way."""
    s = f"The cat_2 sat. {HINDI} भाषा, {TAMIL}; x-y 42 {THAI} {MYANMAR} Straße ٹیکسٹ"
    arrow = [w for w in pc.split_pattern_regex(pa.array([s]), text.WORD_SEP)[0].as_py() if w]
    assert text.words(s) == arrow == ["The", "cat_2", "sat", HINDI, "भाषा", TAMIL, "x", "y", "42", THAI, MYANMAR,
                                      "Straße", "ٹیکسٹ"]


def test_word_characters_are_letters_marks_digits_and_underscore():
    """Code point by code point: the Python pattern is exactly the categories L, M, N plus `_`,
    and the code point table of the dedup kernel agrees with it (on planes 0-3, where the
    table is built)."""
    cps = [cp for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]
    got = {ord(w) for w in text.words(" ".join(map(chr, cps)))}
    want = {cp for cp in cps if chr(cp) == "_" or unicodedata.category(chr(cp))[0] in "LMN"}
    assert got == want
    table = text.word_char_table()
    low = np.arange(0x40000)
    assert set(low[table[low]].tolist()) == {cp for cp in want if cp < 0x40000}


def _stats(docs: list[str], langs: list[str]) -> dict[str, np.ndarray]:
    rules = QualityRules()
    return compute_stats(docs, np.arange(len(docs)), [rules.resolve(c)[1] for c in langs], {"words"})


def test_quality_counts_words_with_their_vowel_signs():
    """Spaced scripts (hi, ta): one word per word. Unspaced (th, my: registry space_delimited
    false): the unit is each letter/mark/digit code point, marks counted as units of their own,
    as before; the same units near dedup shingles."""
    docs = [f"{HINDI} {HINDI}", f"{TAMIL} {TAMIL}", THAI, MYANMAR]
    st = _stats(docs, ["hi", "ta", "th", "my"])
    assert st["word_count"].tolist() == [2, 2, len(THAI), len(MYANMAR)]
    assert st["mean_word_length"].tolist() == [len(HINDI), len(TAMIL), 1, 1]
    _, counts, units = hashing.batch_shingles_and_units(pa.array(docs, pa.large_string()),
                                                        np.array([True, True, False, False]), 1, 1, 100)
    assert [len(u) for u in units.to_pylist()] == [2, 2, len(THAI), len(MYANMAR)]


# -- mixers: outputs of the four copies before they moved here (quality._mix, hashing.splitmix64
# and its numba twin _smix, the inline mixer of minhash._oph_kernel) -------------------------------
X = np.array([0, 1, 2, 3, 12345, 2**32, 2**63, 2**64 - 1], dtype=np.uint64)
FINALISER = [0, 6238072747940578789, 15839785061582574730, 2185194620014831856, 17540659726606785873,
             15573649723082471743, 2720858781877447050, 13029008266876403067]
STEP = [16294208416658607535, 10451216379200822465, 10905525725756348110, 2092789425003139053,
        2454886589211414944, 14135772400868000056, 5196802822362493915, 16490336266968443936]
LITE = [0, 13787848775058251473, 9128953510766689699, 4470058229101495057, 2885783402729649027,
        11210995043146035179, 11305413568396471752, 14282661027806028912]


def test_mixers_keep_their_outputs():
    assert text.splitmix64(X).tolist() == FINALISER
    assert text.splitmix64_step(X).tolist() == STEP
    assert text.splitmix64_step(np.array([0, 7, 99], np.int64)).tolist() == [
        16294208416658607535, 7191089600892374487, 4824385676517010403]
    with np.errstate(over="ignore"):
        assert text.mix64_lite(X).tolist() == LITE
    assert int(text.splitmix64(np.uint64(12345))) == FINALISER[4]  # numpy scalar, no warning


def test_compiled_mixers_equal_the_numpy_ones():
    fin, lite = njit(text.mix64), njit(text.mix64_lite)
    assert [int(fin(np.uint64(v))) for v in X] == FINALISER
    assert [int(lite(np.uint64(v))) for v in X] == LITE


DOCS = ["Hello, World! hello world", "हिन्दी भाषा", "ภาษาไทยที่ดี", "မြန်မာ"]
SPACED = np.array([True, True, False, False])


def test_dedup_signatures_and_band_keys_unchanged():
    """End to end through the compiled kernels: shingle hashes, unit hashes, one-permutation and
    classic MinHash signatures and LSH band keys of fixed documents, as before the move."""
    flat, counts = hashing.batch_shingles(pa.array(DOCS, pa.large_string()), SPACED, 2, 3)
    assert flat.tolist() == [
        4238282232859554644, 7562027182097931566, 4238282232859554644, 12178704108200003784, 7459616334982669421,
        17500663529414237800, 6400795712209413264, 2288435669735224262, 3477482770459546429, 14834459123701084029,
        18173464968191924205, 7896319283866629872, 15869241877480361672, 9598527307910994300, 3796167418067534513,
        16558950035508457519, 7892295108504354062, 14505821518425524874]
    assert counts.tolist() == [3, 1, 10, 4]
    _, _, units = hashing.batch_shingles_and_units(pa.array(DOCS, pa.large_string()), SPACED, 2, 3, 4)
    assert units.to_pylist() == [[1191394437, 135109378, 1191394437, 135109378], [4168856118, 1508691836],
                                 [144997147, 2927407989, 3426346288, 2927407989],
                                 [102948981, 1672739476, 1796502626, 3100460816]]
    sig = minhash.oph_signatures(flat, counts, 8, seed=1)
    assert sig.tolist() == [
        [1042658617, 2623422190, 2056691871, 3637455436, 1190679549, 3992105353, 4088695259, 1374499720],
        [2979769238, 333455425, 4113088048, 1467036899, 3376827730, 2596413061, 2081068916, 3729992999],
        [800476500, 1043199390, 2686094383, 3011378643, 759858274, 204655957, 2449847524, 492377518],
        [770643759, 2411109884, 293725261, 1845520966, 1502860810, 2394461920, 277868369, 3408365918]]
    a, b = minhash.permutations(8, 1)
    assert minhash.signatures_flat(flat, counts, a, b)[0].tolist() == [
        594114982, 822272564, 552770976, 892494844, 3453802538, 724161809, 2573423821, 2734209606]
    keys = near.band_rows(sig, np.arange(4, dtype=np.int64), 4, 2).column("key").to_numpy()
    assert keys.tolist() == [
        16607131066487549016, 5248468143128665295, 17890833525480745918, 6875857281215111723, 2184860733181209284,
        1667291940994164555, 3540453698290131043, 17552072194373075641, 8102040320305803226, 10003289386363221907,
        2633894793797684206, 18250948560865359584, 11657634211445063911, 7534156209556041829, 16808868838856006923,
        15848486167738184192]


# -- normalisers ---------------------------------------------------------------------------------
CASES = ["Ｈｅｌｌｏ,  WORLD!!", "Straße — ﬁne\u200c", " a\tb\u2028c ", "x_y", "", "\u00c9\u0301", "e\u0301"]


def test_dedup_normaliser_known_outputs():
    # lower() keeps ß; format characters (ZWNJ) and U+2028 stay; ASCII whitespace folds; the
    # output is decomposed (Arrow's NFKC is NFKD in pyarrow 25: see normalize_for_dedup)
    assert text.normalize_for_dedup(pa.array(CASES)).to_pylist() == [
        "hello world", "straße fine\u200c", "a b\u2028c", "x y", "", "e\u0301\u0301", "e\u0301"]
    hs = hashing.exact_hashes(pa.array(["Hello,  World!", "hello world"])).to_pylist()
    assert [h.hex() for h in hs] == ["df8d09e93f874900a99b8775cc15b6c7"] * 2


def test_contamination_normaliser_known_outputs():
    # casefold: ß -> ss; every P S Z C character is a word break; single spaces
    assert [text.normalize_for_contamination(s) for s in CASES] == [
        "hello world", "strasse fine", "a b c", "x y", "", "\u00e9\u0301", "\u00e9"]


# -- wordfreq ------------------------------------------------------------------------------------
def test_wordfreq_helpers():
    pytest.importorskip("wordfreq")
    assert "en" in text.wordfreq_languages()
    top = text.stop_words("en", 10)
    assert "the" in top and len(top) == 10
    freq = text.log_frequencies("en")
    assert freq["the"] > freq["river"] > -8
