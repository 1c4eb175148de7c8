"""Lexical measures: hand-computed values, the batched LCS, and equality with the PyPI package ``diversity`` 0.3.0.

The package's ``__init__`` imports spacy, which it does not declare; its four lexical modules are loaded by file path
from the installed distribution (``scripts/setup.sh`` installs it without dependencies).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
import math
import random
import types
from pathlib import Path

import numpy as np
import pytest

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.metrics import lexical as lx
from lm_eval_diversity.settings import DiversitySettings


def lexical_scores_groups(groups, mode: str = "default") -> list[dict[str, float]]:
    """Every lexical measure of each group through its catalogue record (the ``texts`` pass's calls)."""
    settings = DiversitySettings(lexical_mode=mode)
    columns = {m: catalogue.record(m).fn(groups, settings) for m in lx.LEXICAL_MEASURES}
    return [{m: columns[m][i] for m in lx.LEXICAL_MEASURES} for i in range(len(groups))]


def lexical_scores(texts, mode: str = "default") -> dict[str, float]:
    return lexical_scores_groups([texts], mode)[0]

# ----------------------------------------------------------------------------------------------------------------
# hand-computed values


def test_distinct_n_counts_ngrams_inside_each_text():
    texts = ["a b a", "a b"]
    # unigrams a b a a b: 2 distinct of 5; bigrams ab ba ab: 2 of 3; trigram aba: 1 of 1; no 4-gram
    assert lx.distinct_n(texts, 1) == pytest.approx(2 / 5)
    assert lx.distinct_n(texts, 2) == pytest.approx(2 / 3)
    assert lx.distinct_n(texts, 3) == 1.0
    assert math.isnan(lx.distinct_n(texts, 4))
    # the bigram "a a" across the boundary of "b a" and "a b" is not counted
    assert lx.distinct_n(["b a", "a b"], 2) == 1.0


def test_identical_outputs():
    texts = ["x y z w"] * 4
    scores = lexical_scores(texts)
    assert [scores[f"distinct_{n}"] for n in (1, 2, 3, 4)] == [4 / 16, 3 / 12, 2 / 8, 1 / 4]
    assert scores["ngram_diversity"] == pytest.approx(1.0)
    # each text has one 4-gram, shared with the 3 others: log(1 + 3)
    assert scores["self_repetition"] == pytest.approx(math.log(4))
    assert scores["homogenization_rougel"] == 1.0
    assert scores["self_bleu"] == pytest.approx(1.0)
    compat = lexical_scores(texts, mode="compat")
    # the package joins the texts: 16 words, 15 bigrams, 14 trigrams, 13 4-grams, 4 distinct of each order
    assert compat["ngram_diversity"] == round(4 / 16 + 4 / 15 + 4 / 14 + 4 / 13, 3) == 1.11
    assert compat["homogenization_rougel"] == 1.0


def test_all_distinct_outputs():
    texts = ["a b c d", "e f g h", "i j k l"]
    scores = lexical_scores(texts)
    assert all(scores[f"distinct_{n}"] == 1.0 for n in (1, 2, 3, 4))
    assert scores["ngram_diversity"] == 4.0
    assert scores["self_repetition"] == 0.0
    assert scores["homogenization_rougel"] == 0.0
    assert scores["self_bleu"] == 0.0
    compat = lexical_scores(texts, mode="compat")
    assert compat["ngram_diversity"] == 4.0
    # the package's rule "every pair scores 0 -> 1.0": no word in common reads as fully homogeneous
    assert compat["homogenization_rougel"] == 1.0


def test_single_output_and_empty_set_are_nan():
    for texts in ([], ["only one output here"]):
        for mode in lx.MODES:
            scores = lexical_scores(texts, mode=mode)
            assert list(scores) == list(lx.LEXICAL_MEASURES)
            assert all(math.isnan(v) for v in scores.values()), (texts, mode, scores)


def test_empty_outputs():
    texts = ["", ""]
    scores = lexical_scores(texts)
    # raw text " ": gzip header 10 bytes + deflate (fixed-Huffman block: 3 header bits, 8-bit literal, 7-bit end of
    # block = 3 bytes) + trailer 8 bytes = 21
    assert scores["compression_ratio"] == pytest.approx(1 / 21)
    assert all(math.isnan(scores[f"distinct_{n}"]) for n in (1, 2, 3, 4))
    assert math.isnan(scores["ngram_diversity"])
    assert scores["self_repetition"] == 0.0  # no 4-gram shared: log(1 + 0)
    assert scores["homogenization_rougel"] == 1.0  # two empty token sequences are identical
    assert math.isnan(scores["self_bleu"])  # no hypothesis has a token
    compat = lexical_scores(texts, mode="compat")
    assert compat["homogenization_rougel"] == 1.0  # the package: every pair 0 -> 1.0
    # one empty output among others: it has no BLEU and is no reference
    assert lx.self_bleu(["", "the cat sat", "the cat sat"]) == pytest.approx(1.0)
    assert lx.homogenization_rouge_l(["", "a b"]) == 0.0
    assert lx.homogenization_rouge_l(["", "a b"], mode="compat") == 1.0


def test_compression_ratio_is_one_gzip_by_default_and_two_in_compat():
    texts = ["the cat sat on the mat"] * 8
    raw = " ".join(texts).encode()
    assert lx.compression_ratio(texts) == len(raw) / len(gzip.compress(raw, 9, mtime=0))
    twice = gzip.compress(gzip.compress(raw, 9, mtime=0), 9, mtime=0)
    # the second compression stores the name "compressed" (10 characters and a NUL) in its header
    assert lx.compression_ratio(texts, mode="compat") == round(len(raw) / (len(twice) + 11), 3)
    assert lx.compression_ratio(texts) > lx.compression_ratio(texts, mode="compat")


def test_ngram_diversity_compat_depends_on_order_default_does_not():
    a, b, c = "x a", "b y", "a b"
    # unigrams x a b y a b: 4 distinct of 6 in any order; bigrams of the joined text "x a b y a b": xa ab by ya ab,
    # 4 distinct of 5; of "b y x a a b": 5 distinct of 5
    first = lx.ngram_diversity_score([a, b, c], max_n=2, mode="compat")
    second = lx.ngram_diversity_score([b, a, c], max_n=2, mode="compat")
    assert first == round(4 / 6 + 4 / 5, 3)
    assert second == round(4 / 6 + 5 / 5, 3)
    # default: unigrams x a b y a b (4 of 6), bigrams xa by ab (3 of 3), in any order
    assert lx.ngram_diversity_score([a, b, c], max_n=2) == lx.ngram_diversity_score([b, a, c], max_n=2)
    assert lx.ngram_diversity_score([a, b, c], max_n=2) == pytest.approx(4 / 6 + 1)


def test_ngram_diversity_compat_counts_empty_words_of_double_spaces():
    # "a  b" splits on single spaces into a, "", b
    assert lx.ngram_diversity_score(["a  b", "a"], max_n=1, mode="compat") == round(3 / 4, 3)
    assert lx.ngram_diversity_score(["a  b", "a"], max_n=1) == pytest.approx(2 / 3)


def test_self_repetition_counts_other_texts_sharing_ngrams():
    texts = ["a b c d", "a b c d e", "z z z z"]
    # 4-gram sets: {abcd}, {abcd, bcde}, {zzzz}; abcd is in 2 texts
    # text 1: 2 - 1 = 1; text 2: (2 + 1) - 2 = 1; text 3: 1 - 1 = 0
    expected = (math.log(2) + math.log(2) + math.log(1)) / 3
    assert lx.self_repetition_score(texts) == pytest.approx(expected)
    assert lx.self_repetition_score(texts, mode="compat") == pytest.approx(expected)
    # bigrams: {ab, bc, cd}, {ab, bc, cd, de}, {zz}: text 1 shares 3, text 2 shares 3, text 3 none
    assert lx.self_repetition_score(texts, n=2) == pytest.approx(2 * math.log(4) / 3)
    with pytest.raises(ValueError, match="4-grams"):
        lx.self_repetition_score(texts, n=2, mode="compat")


def test_homogenization_rouge_l_hand_computed():
    # "a b c" vs "a c": LCS 2, P = 2/3, R = 1, F = 0.8; "x" shares nothing
    texts = ["A b, c!", "a c", "x"]
    assert lx.homogenization_rouge_l(texts) == pytest.approx(0.8 / 3)
    # compat: per text the mean over the others, 0.4, 0.4, 0 -> 0.8 / 3, rounded
    assert lx.homogenization_rouge_l(texts, mode="compat") == round(0.8 / 3, 3)
    assert lx.rouge_tokens("A b, c!") == ["a", "b", "c"]


def test_self_bleu_hand_computed():
    texts = ["a b c d", "a b c d", "w x y z"]
    # the first two match a reference exactly (BLEU 1); the third shares no unigram with either (BLEU 0)
    assert lx.self_bleu(texts) == pytest.approx(2 / 3)
    # "a b c d" against "a b c e" (and back): precisions 3/4, 2/3, 1/2 and, for the 4-gram with no match, exp
    # smoothing 1 / (2 * 1); equal lengths, no brevity penalty: BLEU = (3/4 * 2/3 * 1/2 * 1/2) ** (1/4)
    assert lx.self_bleu(["a b c d", "a b c e"]) == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25)
    # a shorter hypothesis: "a b" against "a b c e": precisions 1, 1 (effective order 2), brevity exp(1 - 4/2);
    # "a b c e" against "a b": 2/4, 1/3, then no trigram/4-gram match: exp smoothing 1/(2*2), 1/(4*1)
    forward = math.exp(1 - 4 / 2)
    backward = (2 / 4 * 1 / 3 * 1 / 4 * 1 / 4) ** 0.25
    assert lx.self_bleu(["a b", "a b c e"]) == pytest.approx((forward + backward) / 2)


def test_higher_is_better_and_bad_mode():
    assert set(lx.HIGHER_IS_BETTER) == set(lx.LEXICAL_MEASURES)
    assert lx.HIGHER_IS_BETTER["distinct_1"] and lx.HIGHER_IS_BETTER["ngram_diversity"]
    assert not lx.HIGHER_IS_BETTER["self_bleu"] and not lx.HIGHER_IS_BETTER["compression_ratio"]
    assert not lx.HIGHER_IS_BETTER["homogenization_rougel"] and not lx.HIGHER_IS_BETTER["self_repetition"]
    with pytest.raises(ValueError, match="mode must be one of default, compat"):
        lx.compression_ratio(["a", "b"], mode="paper")
    with pytest.raises(ValueError, match="lexical_mode must be one of"):
        lexical_scores(["a", "b"], mode="paper")
    with pytest.raises(ValueError, match="n must be >= 1"):
        lx.distinct_n(["a", "b"], 0)


def test_settings_name_the_mode_and_library_versions():
    settings = lx.lexical_settings("compat")
    assert settings["mode"] == "compat"
    assert settings["sacrebleu"] == importlib.metadata.version("sacrebleu")
    assert settings["rouge_score"] == importlib.metadata.version("rouge-score")
    assert "tokenize=13a" in settings["bleu"] and "smooth=exp" in settings["bleu"]
    with pytest.raises(ValueError, match="mode must be one of"):
        lx.lexical_settings("exact")


# ----------------------------------------------------------------------------------------------------------------
# the batched LCS against the textbook table


def _lcs_table(a, b) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def test_batched_lcs_equals_the_dynamic_programme():
    rng = random.Random(7)
    pairs = []
    for _ in range(300):
        alphabet = rng.randint(1, 6)
        a = [rng.randrange(alphabet) for _ in range(rng.randint(0, 40))]
        b = [rng.randrange(alphabet) for _ in range(rng.randint(0, 90))]
        pairs.append((np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)))
    got = lx.lcs_lengths(pairs)
    assert got.tolist() == [_lcs_table(a.tolist(), b.tolist()) for a, b in pairs]


def test_groups_batch_equals_one_group_at_a_time():
    groups = [["a b c", "a c", "x"], ["p q r s", "q r", "s p q"], ["only"], ["", "", "t"]]
    batched = lexical_scores_groups(groups)
    for texts, row in zip(groups, batched):
        single = lexical_scores(texts)
        assert list(row) == list(single)
        for key in row:
            assert (math.isnan(row[key]) and math.isnan(single[key])) or row[key] == single[key], key


# ----------------------------------------------------------------------------------------------------------------
# equality with the package ``diversity`` 0.3.0 on real texts


def _diversity_module(name: str) -> types.ModuleType:
    try:
        dist = importlib.metadata.distribution("diversity")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the test dependency `diversity` is not installed (scripts/setup.sh installs it)")
    assert dist.version.startswith("0.3."), dist.version
    path = Path(str(dist.locate_file(f"diversity/{name}.py")))
    spec = importlib.util.spec_from_file_location(f"_diversity_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _real_groups(data_dir: Path) -> list[list[str]]:
    """Groups of 4 real texts: Alpaca responses, GSM8K solutions, MBPP programs, TruthfulQA correct answers."""

    def rows(rel: str) -> list[dict]:
        with open(data_dir / rel, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    groups: list[list[str]] = []
    alpaca = [r["output"] for r in rows("alpaca/train.jsonl")]
    groups += [alpaca[i : i + 4] for i in range(0, 80, 4)]
    gsm8k = [r["answer"] for r in rows("gsm8k/test.jsonl")]
    groups += [gsm8k[i : i + 4] for i in range(0, 40, 4)]
    mbpp = [r["code"] for r in rows("mbpp/test.jsonl")]
    groups += [mbpp[i : i + 4] for i in range(0, 40, 4)]
    tqa = [r["correct_answers"] for r in rows("truthfulqa/validation.jsonl")]
    groups += [answers[:4] for answers in tqa[:40] if len(answers) >= 2]
    # near-duplicates: one text and three edits of it
    for text in alpaca[100:110]:
        w = text.split()
        groups.append([text, " ".join(w[1:]), " ".join(w[:-1]), text.lower()])
    return groups


@pytest.fixture(scope="module")
def real_groups(shared_data_dir: Path) -> list[list[str]]:
    return _real_groups(shared_data_dir)


def test_compat_equals_the_package(real_groups, monkeypatch):
    compression = _diversity_module("compression")
    ngram = _diversity_module("ngram_diversity")
    repetition = _diversity_module("self_repetition")
    homogenization = _diversity_module("homogenization")
    # the package's inner gzip header holds the current time; fix the clock it reads
    monkeypatch.setattr(gzip, "time", types.SimpleNamespace(time=lambda: 0.0))
    ours = lexical_scores_groups(real_groups, mode="compat")
    assert len(real_groups) > 80
    for texts, row in zip(real_groups, ours):
        assert row["compression_ratio"] == pytest.approx(compression.compression_ratio(texts), abs=1e-9)
        assert row["ngram_diversity"] == pytest.approx(ngram.ngram_diversity_score(texts, 4), abs=1e-9)
        assert row["self_repetition"] == pytest.approx(repetition.self_repetition_score(texts, verbose=False), abs=1e-9)
        theirs = homogenization.homogenization_score(texts, measure="rougel", verbose=False)
        assert row["homogenization_rougel"] == pytest.approx(theirs, abs=1e-9), texts


def test_default_differs_from_compat_as_documented(real_groups):
    default = lexical_scores_groups(real_groups)
    compat = lexical_scores_groups(real_groups, mode="compat")
    n_order = 0
    for texts, d, c in zip(real_groups, default, compat):
        raw = " ".join(texts).encode()
        # one gzip against two: the second compression of an already compressed stream only adds bytes
        assert d["compression_ratio"] == len(raw) / len(gzip.compress(raw, 9, mtime=0))
        assert d["compression_ratio"] > c["compression_ratio"]
        # the same ROUGE-L pairs: the plain mean equals the package's value up to its rounding, unless every pair
        # scored 0 or two texts have no token (1 by default, 0 in the package)
        n_tokenless = sum(not lx.rouge_tokens(t) for t in texts)
        if n_tokenless >= 2:
            n_pairs = len(texts) * (len(texts) - 1) // 2
            assert d["homogenization_rougel"] >= n_tokenless * (n_tokenless - 1) / 2 / n_pairs
        elif d["homogenization_rougel"] > 0:
            assert abs(d["homogenization_rougel"] - c["homogenization_rougel"]) <= 5e-4 + 1e-12
        else:
            assert c["homogenization_rougel"] == 1.0
        assert d["self_repetition"] == c["self_repetition"]
        reversed_ = lx.ngram_diversity_score(texts[::-1], mode="compat")
        n_order += reversed_ != c["ngram_diversity"]
        assert lx.ngram_diversity_score(texts[::-1]) == pytest.approx(d["ngram_diversity"], abs=1e-12, nan_ok=True)
    # the package's n-gram diversity moves when the outputs are reordered on some real groups
    assert n_order > 0


def test_self_bleu_equals_sacrebleu_sentence_score_per_text(real_groups):
    from sacrebleu.metrics import BLEU

    bleu = BLEU(tokenize="13a", smooth_method="exp", effective_order=True)
    constructed = [["a b c d", "a b", "a b c d e", "d c b a"], ["x y x y", "x y x y", "x y", "y x y", "x"]]
    for texts in real_groups + constructed:
        kept = [t for t in texts if t.split()]
        if len(kept) < 2:
            assert math.isnan(lx.self_bleu(texts))
            continue
        expected = sum(bleu.sentence_score(h, kept[:i] + kept[i + 1 :]).score for i, h in enumerate(kept))
        assert lx.self_bleu(texts) == pytest.approx(expected / len(kept) / 100, abs=1e-12), texts
