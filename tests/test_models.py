"""Token-ordered batching: hand-checked batch cutting, and the same vectors/scores as the libraries' own calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import FakeSentenceModel

from lm_eval_diversity import models
from lm_eval_diversity.models import embed_texts, load_nli_model, token_batches
from tests.metrics.test_nli import PAIRS, _independent_w

# float tolerance of token-ordered vs encode()'s character-ordered batching (fp32, unit vectors): the ids and
# masks are identical, only the batch shapes (hence the summation order in the kernels) differ
EMBEDDING_ATOL = 1e-5


def _features(lengths: list[int], width: int, side: str = "right") -> dict:
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        cols = slice(width - n, width) if side == "left" else slice(0, n)
        mask[i, cols] = 1
        ids[i, cols] = torch.arange(1, n + 1) + 100 * i
    return {"input_ids": ids, "attention_mask": mask, "modality": "text"}


def test_batches_follow_token_count_and_carry_only_their_own_padding():
    feats = _features([2, 5, 1, 4, 5], width=5)
    got = [(rows.tolist(), batch) for rows, batch in token_batches(feats, batch_size=2)]
    # longest first, ties in input order: rows 1, 4 (5 tokens) | 3 (4), 0 (2) | 2 (1)
    assert [r for r, _ in got] == [[1, 4], [3, 0], [2]]
    assert [b["input_ids"].shape for _, b in got] == [(2, 5), (2, 4), (1, 1)]
    assert got[1][1]["input_ids"].tolist() == [[301, 302, 303, 304], [1, 2, 0, 0]]
    assert got[1][1]["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert got[2][1]["input_ids"].tolist() == [[201]]
    assert all(b["modality"] == "text" for _, b in got)  # non-tensor entries pass through


def test_left_padding_keeps_the_right_end():
    feats = _features([1, 3, 2], width=3, side="left")
    got = [(rows.tolist(), batch) for rows, batch in token_batches(feats, batch_size=2, padding_side="left")]
    assert [r for r, _ in got] == [[1, 2], [0]]
    assert got[0][1]["input_ids"].tolist() == [[101, 102, 103], [0, 201, 202]]
    assert got[1][1]["input_ids"].tolist() == [[1]]


TEXTS = [
    "Short.",
    "",
    "The cat sat on the mat because it was warm there.",
    "x = 12345 * 67890 / (3.14159 ** 2); print(f'{x:.3f}')",
    "Étude: naïve café — 東京 and São Paulo.",
    "First we compute the total. Then we divide by four. Finally we check the answer is 7.",
    "word " * 400,  # longer than MiniLM's 256-token limit: truncated as in encode()
    "def f(a, b):\n    return [i * a for i in range(b) if i % 2]\n",
    "Short.",
]


def test_token_ordered_embeddings_equal_encode(minilm):
    expected = minilm.encode(TEXTS, batch_size=3, convert_to_numpy=True, normalize_embeddings=True)
    got = embed_texts(minilm, TEXTS, batch_size=3)
    assert got.shape == expected.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=EMBEDDING_ATOL, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    # the batches really differ from encode()'s: char order puts the code line ahead of the prose sentence
    lengths = minilm.preprocess(TEXTS)["attention_mask"].sum(1).tolist()
    assert (len(TEXTS[3]) < len(TEXTS[5])) and (lengths[3] > lengths[5])
    # rows are not mixed up: distinct texts give distinct vectors, equal texts equal ones
    assert np.abs(got[0] - got[2]).max() > 0.1
    np.testing.assert_allclose(got[0], got[8], atol=EMBEDDING_ATOL)


def test_chunked_tokenisation_gives_the_same_vectors(minilm, monkeypatch):
    whole = embed_texts(minilm, TEXTS, batch_size=4)
    monkeypatch.setattr(models, "TOKENIZE_CHUNK", 2)
    np.testing.assert_allclose(embed_texts(minilm, TEXTS, batch_size=4), whole, atol=EMBEDDING_ATOL, rtol=0)


def test_models_without_preprocess_use_their_encode():
    fake = FakeSentenceModel({"a": (3.0, 4.0, 0.0), "b": (0.0, 0.0, 2.0)})
    got = embed_texts(fake, ["b", "a"], batch_size=8)
    assert fake.calls == [["b", "a"]]
    np.testing.assert_allclose(got, [[0, 0, 1], [0.6, 0.8, 0]], atol=1e-7)


def test_chunked_nli_equals_one_pair_at_a_time(tiny_nli_dir, monkeypatch):
    nli = load_nli_model(str(tiny_nli_dir), device="cpu")
    pairs = PAIRS + [(h, p) for p, h in PAIRS]
    expected = _independent_w(str(tiny_nli_dir), pairs)
    monkeypatch.setattr(models, "TOKENIZE_CHUNK", 3)
    np.testing.assert_allclose(nli.entail_minus_contradict(pairs, batch_size=2), expected, atol=1e-5)


def test_nli_truncation_to_max_length(tiny_nli_dir):
    nli = load_nli_model(str(tiny_nli_dir), device="cpu", max_length=12)
    long_pair = ("one two three four five six seven eight nine ten eleven", "a b c d e f g h")
    feats = nli.tokenize([long_pair, ("x", "y")])
    assert feats["attention_mask"].sum(1).tolist() == [12, 5]  # [CLS] x [SEP] y [SEP]
    expected = _independent_w(str(tiny_nli_dir), [("x", "y")])
    assert nli.entail_minus_contradict([long_pair, ("x", "y")])[1] == pytest.approx(expected[0], abs=1e-5)
