"""Two runs of one model, written as ``lm_eval --output_path DIR/results.json --log_samples`` writes them: a baseline
sampled at T=1.0 and a collapsed run at T=0.3, on three tasks (one graded), K = 4.

The per-prompt values are chosen by hand (they are the logged values the report must show, not computed from the
outputs here); the outputs carry what the sample viewer must handle: thinking text to strip, exact duplicates,
verdicts logged by the diversity filter, an output longer than the viewer shows, and an output written to break
out of the page.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

NAN = math.nan
STAMP = "2026-01-05T10-00-00.000000"
K = 4
HOSTILE = '</script><script>document.title="pwned"</script><img src="http://example.invalid/x.png" onerror="alert(1)">'
LONG = "once upon a time " * 120  # 2040 characters: longer than the viewer shows

# task -> run -> per-doc values / outputs / verdicts (3 docs each)
VALUES = {
    "diversity_gsm8k": {
        "base": {
            "sbert": [0.5, 0.6, 0.4],
            "vendi": [3.0, 3.2, 2.8],
            "ead": [0.8, 0.8, 0.8],
            "acc": [1.0, 0.0, 1.0],
            "k_correct": [2, 2, 3],
            "sbert_correct": [0.4, 0.5, 0.3],
            "vendi_correct": [2.0, 2.0, 2.5],
            "dup_rate": [0.0, 0.0, 0.0],
        },
        "cold": {
            "sbert": [0.3, 0.1, 0.35],
            "vendi": [2.0, 1.2, 2.5],
            "ead": [0.6, 0.3, 0.7],
            "acc": [1.0, 1.0, 1.0],
            "k_correct": [3, 3, 3],
            "sbert_correct": [0.2, 0.05, 0.3],
            "vendi_correct": [1.5, 1.1, 2.0],
            "dup_rate": [0.25, 0.5, 0.0],
        },
    },
    "diversity_xsum": {
        "base": {"sbert": [0.7, 0.7, 0.7], "vendi": [3.5, 3.5, 3.5], "ead": [0.9, 0.9, 0.9], "dup_rate": [0.0] * 3},
        "cold": {"sbert": [0.6, 0.2, 0.5], "vendi": [3.0, 1.5, 2.5], "ead": [0.8, 0.4, 0.7], "dup_rate": [0.0] * 3},
    },
    "diversity_writingprompts": {
        "base": {"sbert": [0.8, 0.8, 0.8], "vendi": [3.9, 3.9, 3.9], "ead": [0.95] * 3, "dup_rate": [0.0] * 3},
        "cold": {"sbert": [0.75, 0.85, 0.7], "vendi": [3.8, 3.9, 3.6], "ead": [0.9] * 3, "dup_rate": [0.0] * 3},
    },
}


def _outputs(task: str, run: str, doc: int) -> tuple[list[str], list[bool] | None]:
    """The K raw outputs of one prompt and, on gsm8k, the filter's verdicts."""
    if task == "diversity_gsm8k":
        if run == "cold" and doc == 1:  # the collapse the viewer test looks at: three identical answers
            return (
                [
                    "<think>12 + 30 = 42</think> The answer is 42.",
                    "The answer is 42.",
                    "The answer is 42.",
                    "It is 41.",
                ],
                [True, True, True, False],
            )
        return [f"Run {run}, doc {doc}: answer {40 + i}." for i in range(K)], [i % 2 == 0 for i in range(K)]
    if task == "diversity_xsum" and run == "cold" and doc == 1:
        return [HOSTILE, "A short summary.", "A short summary!", "Summary, short."], None
    if task == "diversity_writingprompts" and run == "base" and doc == 0:
        return [LONG, "The dragon slept.", "Rain fell on the city.", "She opened the door."], None
    return [f"{run} {task} doc {doc} output {i}" for i in range(K)], None


def _line(task: str, run: str, doc: int, temperature: float) -> dict:
    outputs, verdicts = _outputs(task, run, doc)
    prompt = f"<|im_start|>user\nPrompt {doc} of {task}: write something.<|im_end|>\n<|im_start|>assistant\n"
    records = [
        json.dumps({"response": o, **({"answer": "42", "correct": v} if verdicts else {})})
        for o, v in zip(outputs, verdicts or [None] * K)
    ]
    line = {
        "doc_id": doc,
        "doc": {"split_index": 10 + doc, "question": f"question {doc}"},
        "target": "42",
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"temperature": temperature, "do_sample": True}}},
        "resps": [outputs],
        "filtered_resps": [records],
        "filter": "div",
        "metrics": list(VALUES[task][run]),
        "doc_hash": f"doc-{task}-{doc}",
        "prompt_hash": f"prompt-{task}-{doc}",
        "target_hash": "t",
    }
    line.update({m: xs[doc] for m, xs in VALUES[task][run].items()})
    return line


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs)


def write_run(folder: Path, run: str, temperature: float) -> Path:
    """``folder/results_<stamp>.json`` and its samples files, as lm-eval writes them for ``--output_path
    folder/results.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    results, configs = {}, {}
    for task, runs in VALUES.items():
        results[task] = {"alias": task, **{f"{m},div": _mean(xs) for m, xs in runs[run].items()}}
        configs[task] = {
            "task": task,
            "repeats": K,
            "generation_kwargs": {"temperature": temperature, "top_p": 0.95, "do_sample": True, "max_gen_toks": 40},
            "metadata": {"diversity_settings": {"sbert_model": "all-MiniLM-L6-v2", "vocab_size": 50257}},
        }
        lines = [json.dumps(_line(task, run, d, temperature)) for d in range(3)]
        (folder / f"samples_{task}_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")
    data = {
        "results": results,
        "configs": configs,
        "task_hashes": {t: f"hash-{t}" for t in VALUES},
        "n-samples": {t: {"original": 3, "effective": 3} for t in VALUES},
        "config": {"model": "hf", "model_args": "pretrained=/opt/models/smol,gguf_file=Smol-135M.Q4_1.gguf"},
        "model_name": "/opt/models/smol",
    }
    (folder / f"results_{STAMP}.json").write_text(json.dumps(data))
    return folder


def write_fixture_runs(root: Path) -> tuple[Path, Path]:
    """(baseline folder, collapsed folder) under ``root``."""
    return (write_run(root / "temperature-1.0", "base", 1.0), write_run(root / "temperature-0.3", "cold", 0.3))
