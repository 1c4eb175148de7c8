"""Benchmark: vLLM generation of K samples per prompt, the ways a run can send them (CPU or GPU; docs/gpu_vllm.md).

Modes, each over the same prompts (the demo's GSM8K prompts under the model's chat template) and token budget:

* ``copies``: K copies of each prompt, one ``SamplingParams`` each, all in one ``generate`` call: what lm-eval's
  vLLM backend sends with ``--batch_size auto`` (automatic prefix caching on, vLLM's default);
* ``copies_no_prefix_cache``: the same with ``enable_prefix_caching=False`` (a second engine);
* ``n``: one request per prompt with ``SamplingParams(n=K)`` (vLLM's own repeats; lm-eval 0.4 keeps only the first
  of n, so runs cannot use it);
* ``one_at_a_time``: the K x N copies sent in K x N ``generate`` calls: what ``--batch_size 1`` (lm-eval's default)
  did before the tasks switched vLLM to ``auto``.

Each output is forced to ``--max_tokens`` tokens (``ignore_eos``), so every mode generates the same number of tokens;
tokens/s = generated tokens / wall seconds of the ``generate`` calls. Engine start (``LLM(...)``) is timed too.

    python benchmarks/bench_vllm.py --model DIR_OR_NAME --k 4 --prompts 8 --max_tokens 64          # CPU
    python benchmarks/bench_vllm.py --model allenai/Olmo-3-7B-Instruct --k 16 --prompts 64 \\
        --max_tokens 512 --dtype bfloat16 --gpu_memory_utilization 0.9 --no_enforce_eager           # a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

DEMO_GSM8K = Path(__file__).resolve().parents[1] / "lm_eval_diversity" / "demo_data" / "gsm8k" / "test.jsonl"
MODES = ("copies", "copies_no_prefix_cache", "n", "one_at_a_time")


def prompts(tokenizer, count: int) -> list[str]:
    docs = [json.loads(line) for line in DEMO_GSM8K.read_text().splitlines() if line.strip()]
    texts = [f"Question: {d['question']}\nAnswer:" for d in docs]
    texts = (texts * (count // len(texts) + 1))[:count]
    if tokenizer.chat_template:
        return [
            tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
            for t in texts
        ]
    return texts


def engine(args, prefix_caching: bool):
    from vllm import LLM

    kwargs = {"model": args.model, "dtype": args.dtype, "seed": args.seed, "max_model_len": args.max_model_len,
              "enforce_eager": args.enforce_eager, "enable_prefix_caching": prefix_caching}  # fmt: skip
    if args.gpu_memory_utilization is not None:
        kwargs["gpu_memory_utilization"] = args.gpu_memory_utilization
    t0 = time.perf_counter()
    llm = LLM(**kwargs)
    return llm, time.perf_counter() - t0


def run_mode(llm, mode: str, texts: list[str], args) -> dict:
    from vllm import SamplingParams

    def params(n: int = 1):
        return SamplingParams(n=n, temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, ignore_eos=True)

    t0 = time.perf_counter()
    if mode == "n":
        outs = llm.generate(texts, [params(args.k) for _ in texts], use_tqdm=False)
    elif mode == "one_at_a_time":
        outs = [o for t in texts for _ in range(args.k) for o in llm.generate([t], [params()], use_tqdm=False)]
    else:
        copies = [t for t in texts for _ in range(args.k)]
        outs = llm.generate(copies, [params() for _ in copies], use_tqdm=False)
    wall = time.perf_counter() - t0
    samples = [c for o in outs for c in o.outputs]
    tokens = sum(len(c.token_ids) for c in samples)
    per_prompt = [{c.text for c in o.outputs} for o in outs] if mode == "n" else None
    distinct = (
        sum(len(s) for s in per_prompt) / len(per_prompt)
        if per_prompt
        else len({c.text for c in samples}) / len(texts)
    )
    return {"mode": mode, "samples": len(samples), "tokens": tokens, "seconds": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "distinct_per_prompt": round(distinct, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF-format model directory or hub name (vLLM does not read GGUF)")
    ap.add_argument("--k", type=int, default=4, help="samples per prompt (repeats)")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max_tokens", type=int, default=64)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max_model_len", type=int, default=2048)
    ap.add_argument("--gpu_memory_utilization", type=float, default=None)
    ap.add_argument("--no_enforce_eager", dest="enforce_eager", action="store_false",
                    help="let vLLM compile (CUDA graphs / torch.compile); on CPU its start then takes minutes")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma list of {','.join(MODES)}")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        ap.error(f"unknown mode(s) {sorted(unknown)}; choose from {list(MODES)}")

    rows, starts = [], {}
    for prefix_caching in (True, False):
        wanted = [m for m in modes if (m == "copies_no_prefix_cache") != prefix_caching]
        if not wanted:
            continue
        llm, starts[prefix_caching] = engine(args, prefix_caching)
        texts = prompts(llm.get_tokenizer(), args.prompts)
        run_mode(llm, wanted[0], texts[:1], args)  # warm-up: first-call allocations out of the timings
        rows += [run_mode(llm, m, texts, args) for m in wanted]
        del llm
    import vllm

    print(f"vllm {vllm.__version__} | {platform.processor() or platform.machine()} | model {args.model}")
    print(f"K={args.k} x {args.prompts} prompts x {args.max_tokens} tokens | enforce_eager={args.enforce_eager}")
    for cached, secs in starts.items():
        print(f"engine start (prefix caching {'on' if cached else 'off'}): {secs:.1f} s")
    print(f"{'mode':<24}{'samples':>8}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}{'distinct/prompt':>17}")
    for r in rows:
        print(f"{r['mode']:<24}{r['samples']:>8}{r['tokens']:>8}{r['seconds']:>9}{r['tokens_per_s']:>10}"
              f"{r['distinct_per_prompt']:>17}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"engine_start_s": starts, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
