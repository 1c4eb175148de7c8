"""Fake LMs with controlled outputs for runs through lm-eval, and a helper that saves a run like the CLI does."""

from __future__ import annotations

import re
from pathlib import Path

import lm_eval
from lm_eval.api.model import LM
from lm_eval.loggers import EvaluationTracker

from lm_eval_diversity.lm_eval_cli import task_manager

REASONS = ("First add the numbers.", "We multiply then check.", "Count carefully step by step.", "Reason about units.")


def with_repeat_index(requests):
    """``(request, j)`` pairs: lm-eval sends one request object K times (``repeats``); ``j`` counts its clones."""
    seen: dict[int, int] = {}
    for r in requests:
        j = seen.get(id(r), 0)
        seen[id(r)] = j + 1
        yield r, j


class GenerationOnlyLM(LM):
    """A fake LM that only generates: the diversity tasks never ask for log-likelihoods."""

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def gsm8k_gold(doc: dict) -> str:
    return re.search(r"####\s*(-?[\d,\.]+)", doc["answer"]).group(1).replace(",", "")


class GoldLM(GenerationOnlyLM):
    """GSM8K answers ``<reason>\\n#### <answer>``: ``n_reasons`` distinct reasonings cycle over the K samples;
    every ``wrong_every``-th sample (0: none) answers gold + 1."""

    def __init__(self, n_reasons: int = 4, wrong_every: int = 0):
        super().__init__()
        self.n_reasons, self.wrong_every = n_reasons, wrong_every

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for r, j in with_repeat_index(requests):
            answer = gsm8k_gold(r.doc)
            if self.wrong_every and j % self.wrong_every == self.wrong_every - 1:
                answer = str(int(float(answer)) + 1)
            out.append(f"{REASONS[j % self.n_reasons]}\n#### {answer}")
        return out


def run_saved(lm: LM, tasks: list[str], out_dir: Path | None, *, repeats: int, limit: int) -> dict:
    """``simple_evaluate`` with our tasks; with ``out_dir``, results and samples saved as ``--output_path`` does."""
    tm = task_manager(include_defaults=False, metadata={"repeats": repeats})
    tracker = EvaluationTracker(output_path=str(out_dir)) if out_dir else None
    res = lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=tm, limit=limit, log_samples=True, bootstrap_iters=0,
        evaluation_tracker=tracker,
    )  # fmt: skip
    if tracker:
        tracker.save_results_aggregated(results=res, samples=res["samples"])
        for task, samples in res["samples"].items():
            tracker.save_results_samples(task_name=task, samples=samples)
    return res
