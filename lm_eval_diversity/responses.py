"""The diversity filter's responses outside scoring: text clean-up before it, the logged records after it, and the
samples file written when scoring fails after generation (so nothing generated is lost)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lm_eval_diversity.settings import ENV_PREFIX


def replace_lone_surrogates(resps: list[list[str]]) -> tuple[list[list[str]], int]:
    """Responses with every lone surrogate (a code point no encoder accepts) replaced by U+FFFD, and how many
    responses held one; tokenisers and JSON writers would otherwise fail on them after generation."""
    replaced = 0
    out = []
    for group in resps:
        fixed = []
        for text in group:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # UTF-16 keeps a lone surrogate as one unpaired unit, which "replace" swaps
                text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
                replaced += 1
            fixed.append(text)
        out.append(fixed)
    return out, replaced


class DocPayload(list):
    """What the diversity filter passes per doc: one JSON record per response (what ``--log_samples`` writes as
    ``filtered_resps``), carrying the doc's metric values in ``values`` for ``process_results``."""

    values: dict


def response_records(outputs: list[str], verdicts=None) -> list[str]:
    """Per response, a JSON object: the CoT-stripped text and, on verifiable tasks, the extracted answer and
    whether it is correct. Strings, because lm-eval turns every logged leaf into a string."""
    from lm_eval_diversity.preprocess import strip_cot

    records = []
    for j, text in enumerate(outputs):
        record: dict = {"response": strip_cot(text)}
        if verdicts is not None and j < len(verdicts):
            record.update(answer=verdicts[j].answer, correct=verdicts[j].correct)
        records.append(json.dumps(record, ensure_ascii=False))
    return records


class ScoringAfterGenerationError(RuntimeError):
    """Scoring failed after the responses were generated; they were saved first (the message says where)."""


def save_unscored(task: str, resps: list[list[str]], docs: list[dict]) -> Path:
    """Write the raw responses as an lm-eval samples file (``doc_id``, ``doc``, ``resps``) that ``score`` reads.

    It goes to ``<--output_path>/unscored/`` (the working directory when the run has no output path).
    """
    from datetime import datetime

    from lm_eval_diversity.atomic import write_atomic

    folder = Path(os.environ.get(ENV_PREFIX + "OUTPUT_PATH") or ".") / "unscored"
    if folder.parent.suffix == ".json":  # lm-eval accepts a results file name as --output_path
        folder = folder.parent.parent / "unscored"
    stamp = datetime.now().isoformat().replace(":", "-")
    path = folder / f"samples_{task}_{stamp}.jsonl"
    lines = [
        json.dumps({"doc_id": i, "doc": doc, "resps": [list(outs)]}, ensure_ascii=True, default=str)
        for i, (outs, doc) in enumerate(zip(resps, docs))
    ]
    write_atomic(path, "\n".join(lines) + "\n")
    return path
