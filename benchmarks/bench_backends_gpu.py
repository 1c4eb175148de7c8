"""Benchmark for a GPU machine: torch fp32 / bf16 / fp16 against ONNX Runtime (CUDA) fp32 and ONNX-O4, embeddings
and NLI per pair, side by side in one process, interleaved, with the largest error against torch fp32.

ONNX-O4 is what optimum calls O4 (ONNX Runtime's transformer fusions, GELU approximation, float16), built here with
ONNX Runtime's own optimizer from the package's cached fp32 export (optimum does not install beside transformers 5).
Needs ``pip install onnxruntime-gpu onnx`` (instead of ``onnxruntime``) and a CUDA device.

    python benchmarks/bench_backends_gpu.py --reps 5 --out /tmp/gpu_backends.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n_texts", type=int, default=4000)
    ap.add_argument("--nli_pairs", type=int, default=4000)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    from bench_scoring import _interleaved, build_nli_standin, realistic_tasks
    from onnxruntime.transformers.optimizer import optimize_model

    from lm_eval_diversity import models
    from lm_eval_diversity.estimate import measured_work
    from lm_eval_diversity.scoring import PromptGroup
    from lm_eval_diversity.settings import DiversitySettings

    assert torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers(), "needs CUDA"
    os.environ[models.CACHE_ENV] = tempfile.mkdtemp(prefix="gpu-exports-")
    tasks = realistic_tasks(max(5, args.n_texts // 16), 16, Path(args.data_dir))
    texts = [t for g in tasks.values() for o in g for t in o][: args.n_texts]
    works = [measured_work(t, [PromptGroup(i, o) for i, o in enumerate(g)], DiversitySettings(), 2000)
             for t, g in tasks.items()]  # fmt: skip
    pairs = [p for w in works for p in w.sample_pairs][: args.nli_pairs]
    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    tmp = tempfile.mkdtemp()
    nli_path = build_nli_standin(f"{tmp}/nli", 24, 1024)  # roberta-large-mnli's shape

    def o4(onnx_file: Path, hidden: int, heads: int) -> str:
        opt = optimize_model(str(onnx_file), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=2,
                             use_gpu=True)  # fmt: skip
        opt.convert_float_to_float16(keep_io_types=True)
        path = str(onnx_file.with_name("model_o4.onnx"))
        opt.save_model_to_file(path)
        return path

    embedders = {d: models.load_sentence_model(minilm, "cuda", dtype=d) for d in ("float32", "bfloat16", "float16")}
    nlis = {d: models.load_nli_model(nli_path, "cuda", dtype=d) for d in ("float32", "bfloat16", "float16")}
    embedders["onnx"] = models.load_sentence_model(minilm, "cuda", backend="onnx")
    nlis["onnx"] = models.load_nli_model(nli_path, "cuda", backend="onnx")
    exports = Path(os.environ[models.CACHE_ENV]) / "exports"
    for kind, store, hidden, heads in (("model-", embedders, 384, 12), ("nli-", nlis, 1024, 16)):
        fp32 = next(p for p in exports.glob(f"{kind}onnx-*/model.onnx"))
        session = ort.InferenceSession(o4(fp32, hidden, heads), providers=["CUDAExecutionProvider"])
        template = store["onnx"]
        inner = template[0].model if kind == "model-" else template.model
        o4_module = type(inner)(lambda feed, s=session: s.run(None, feed)[0], inner.input_names, inner.output,
                                inner.config, "onnx-o4")  # fmt: skip
        if kind == "model-":
            o4_model = models.load_sentence_model(minilm, "cuda", backend="onnx")
            o4_model[0].model = o4_module
        else:
            o4_model = models.NLIModel(o4_module, template.tokenizer, "cpu", name="o4")
        store["onnx-o4"] = o4_model

    out = {"device": torch.cuda.get_device_name(0), "texts": len(texts), "pairs": len(pairs)}
    ref_e = models.embed_texts(embedders["float32"], texts, args.batch_size)
    ref_n = nlis["float32"].class_probs(pairs, args.batch_size)

    def sync(fn):
        def run():
            fn()
            torch.cuda.synchronize()

        return run

    out["embeddings"] = _interleaved(
        {k: sync(lambda m=m: models.embed_texts(m, texts, args.batch_size)) for k, m in embedders.items()}, args.reps
    )
    out["nli"] = _interleaved(
        {k: sync(lambda m=m: m.class_probs(pairs, args.batch_size)) for k, m in nlis.items()}, args.reps
    )
    for k, m in embedders.items():
        out["embeddings"][k]["max_abs_error"] = float(
            np.abs(models.embed_texts(m, texts, args.batch_size) - ref_e).max()
        )
    for k, m in nlis.items():
        out["nli"][k]["max_abs_error"] = float(np.abs(m.class_probs(pairs, args.batch_size) - ref_n).max())
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
