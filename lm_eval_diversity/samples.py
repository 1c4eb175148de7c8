"""Read what ``lm_eval ... --output_path DIR --log_samples`` writes: ``samples_<task>_<timestamp>.jsonl`` files.

Each line holds ``doc_id``, ``doc`` and ``resps`` (``[[K responses]]``), and ``arguments`` (the prompt: one that
ends with ``<think>`` marks outputs that start inside a thought); a scored run's lines also hold the per-doc metric
values (top-level numeric keys) and ``doc_hash``. lm-eval writes one line per doc per filter pipeline; the lines of
one doc must agree and are read once. Nothing is skipped silently: a malformed line is an error naming the file and
line. This is the one reader of samples files: ``score`` uses the responses, ``compare`` and a run's baseline the
per-doc values.
"""

from __future__ import annotations

import json
import logging
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_diversity.analysis import as_float
from lm_eval_diversity.preprocess import prompt_opens_think
from lm_eval_diversity.scoring_types import PromptGroup

SAMPLES_GLOB = "samples_*.jsonl"
MAX_LINE_BYTES = 256 * 2**20  # one samples line (one doc's K responses) larger than this is refused
# lm-eval's date suffix, or the sweep's shard suffix (``_p000r00``: prompt shard, repeat shard; docs/scale.md)
_TIMESTAMP_RE = re.compile(r"_(?:\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?|p\d{3,}r\d{2,})$")
logger = logging.getLogger(__name__)
# keys of a logged sample that are not per-doc metric values
_NON_METRIC_KEYS = frozenset(
    ("doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics")
    + ("doc_hash", "prompt_hash", "target_hash")
)


class SamplesFormatError(ValueError):
    """A samples file cannot be read; the message names the file and line."""


@dataclass
class SamplesFile:
    """One task read from one samples file: its prompt groups, per-doc metric values and doc hashes.

    ``values`` maps each doc id to ``{"doc_id": id, <metric>: float, ...}`` (None -> NaN); when a doc is logged once
    per filter pipeline, the ``div`` filter's line gives the values, else the first line. ``prompts`` holds the
    rendered prompt lm-eval logged per doc, ``correct`` the per-output verdicts the ``div`` filter logged on graded
    tasks (``None`` for an output without one); both are for showing outputs, never for scoring.
    """

    path: Path
    task: str
    groups: list[PromptGroup]
    n_lines: int
    n_duplicate_lines: int = 0
    extra: dict = field(default_factory=dict)
    values: dict[int, dict] = field(default_factory=dict)
    doc_hashes: dict[int, str] = field(default_factory=dict)
    prompts: dict[int, str] = field(default_factory=dict)
    correct: dict[int, list[bool | None]] = field(default_factory=dict)


def task_name_from_filename(path: Path) -> str:
    """``samples_<task>_<timestamp>.jsonl`` -> ``<task>`` (lm-eval's own naming rule)."""
    from lm_eval.utils import get_file_task_name

    if not (path.name.startswith("samples_") and path.suffix == ".jsonl" and _TIMESTAMP_RE.search(path.stem)):
        raise SamplesFormatError(
            f"{path}: not an lm-eval samples file name (expected samples_<task>_<timestamp>.jsonl, the timestamp "
            "as lm-eval writes it, e.g. 2026-01-31T12-00-00.000000, or a sweep shard's samples_<task>_p000r00.jsonl); "
            "the task is read from the name"
        )
    return get_file_task_name(path.stem)


def find_samples_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and directories (searched recursively) into samples files, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            hits = []
            for hit in sorted(p.rglob(SAMPLES_GLOB)):
                if is_regular(hit):
                    hits.append(hit)
                else:
                    logger.warning("%s: not a regular file; skipped", hit)
            if not hits:
                raise FileNotFoundError(
                    f"{p}: no {SAMPLES_GLOB} files under this directory (run lm_eval with --log_samples)"
                )
            found.extend(hits)
        elif p.is_file():
            found.append(p)
        elif p.exists():
            raise SamplesFormatError(f"{p}: not a regular file (a FIFO, device or socket cannot be read safely)")
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return found


def is_regular(p: Path) -> bool:
    """A regular file (not a FIFO, device, socket or directory); False when it cannot be stat'ed."""
    try:
        return stat.S_ISREG(p.stat().st_mode)
    except OSError:
        return False


def _responses(resps, where: str) -> list[str]:
    # lm-eval logs generate_until responses as [[r1, ..., rK]] (one request per doc, K repeats)
    if isinstance(resps, list) and len(resps) == 1 and isinstance(resps[0], list):
        resps = resps[0]
    if not isinstance(resps, list) or not all(isinstance(r, str) for r in resps):
        raise SamplesFormatError(f"{where}: 'resps' must be [[str, ...]] (K responses of one request)")
    for i, r in enumerate(resps):
        try:
            r.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SamplesFormatError(
                f"{where}: response {i} holds a lone surrogate {r[exc.start]!r} at character {exc.start}; "
                "it is not valid Unicode text"
            ) from None
    return resps


def _logged_prompt(record: dict) -> str | None:
    """The rendered prompt lm-eval logged (``arguments.gen_args_0.arg_0``), None when absent."""
    args = record.get("arguments")
    first = args.get("gen_args_0") if isinstance(args, dict) else None
    prompt = first.get("arg_0") if isinstance(first, dict) else None
    return prompt if isinstance(prompt, str) else None


def _prompt_opened_think(record: dict) -> bool:
    """Whether the logged prompt ended with ``<think>``."""
    prompt = _logged_prompt(record)
    return prompt is not None and prompt_opens_think(prompt)


def _logged_verdicts(record: dict, k: int) -> list[bool | None] | None:
    """Per output, whether the ``div`` filter logged it correct: its ``filtered_resps`` are one JSON object per output
    (``{"response", "answer", "correct"}``, :func:`lm_eval_diversity.responses.response_records`); None when the
    line holds no verdict at all (an ungraded task, or a run scored after generation)."""
    logged = record.get("filtered_resps")
    if isinstance(logged, list) and len(logged) == 1 and isinstance(logged[0], list):
        logged = logged[0]
    if not isinstance(logged, list):
        return None
    verdicts: list[bool | None] = []
    for item in logged[:k]:
        try:
            obj = json.loads(item) if isinstance(item, str) else item
        except json.JSONDecodeError:
            obj = None
        verdict = obj.get("correct") if isinstance(obj, dict) else None
        verdicts.append(verdict if isinstance(verdict, bool) else None)
    return verdicts if any(v is not None for v in verdicts) else None


def iter_sample_records(path: str | Path) -> Iterator[tuple[str, dict]]:
    """Yield ``("file:line", record)`` for every non-blank line; malformed lines raise, naming file and line."""
    path = Path(path)
    if not is_regular(path):
        raise SamplesFormatError(f"{path}: not a regular file")
    with path.open("rb") as fh:
        lineno = 0
        while raw := fh.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            where = f"{path}:{lineno}"
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise SamplesFormatError(f"{where}: line longer than {MAX_LINE_BYTES} bytes (the line-size cap)")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SamplesFormatError(f"{where}: invalid UTF-8 at byte {exc.start} of the line") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SamplesFormatError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise SamplesFormatError(f"{where}: expected a JSON object per line")
            doc_id = record.get("doc_id")
            if not isinstance(doc_id, int) or isinstance(doc_id, bool):
                raise SamplesFormatError(f"{where}: doc_id must be an integer, got {doc_id!r}")
            yield where, record


def _metric_row(record: dict) -> dict:
    """``{"doc_id": id, <metric>: float}`` from the record's numeric top-level keys (None -> NaN)."""
    row = {"doc_id": record["doc_id"]}
    for k, v in record.items():
        if k not in _NON_METRIC_KEYS and (v is None or isinstance(v, (int, float))):
            row[k] = as_float(v)
    return row


def read_samples_file(path: str | Path, task: str | None = None) -> SamplesFile:
    """Read one samples file into prompt groups (in file order, lm-eval's doc order) and per-doc values.

    The task is read from lm-eval's file name (``samples_<task>_<timestamp>.jsonl``) unless the caller knows it.
    """
    path = Path(path)
    task = task or task_name_from_filename(path)
    groups: dict[int, PromptGroup] = {}
    values: dict[int, dict] = {}
    hashes: dict[int, str] = {}
    prompts: dict[int, str] = {}
    correct: dict[int, list[bool | None]] = {}
    from_div: set[int] = set()
    n_lines = dup = 0
    for where, record in iter_sample_records(path):
        n_lines += 1
        if "resps" not in record:
            raise SamplesFormatError(f"{where}: missing key(s) ['resps']")
        if record.get("doc") is not None and not isinstance(record["doc"], dict):
            raise SamplesFormatError(f"{where}: key 'doc' must be an object, got {type(record['doc']).__name__}")
        doc_id = record["doc_id"]
        outputs = _responses(record["resps"], where)
        is_div = record.get("filter") == "div"
        if doc_id not in values or (is_div and doc_id not in from_div):
            values[doc_id] = _metric_row(record)
            if is_div:
                from_div.add(doc_id)
            if record.get("doc_hash") is not None:
                hashes[doc_id] = record["doc_hash"]
        if is_div and (verdicts := _logged_verdicts(record, len(outputs))) is not None:
            correct[doc_id] = verdicts
        if doc_id not in prompts and (prompt := _logged_prompt(record)) is not None:
            prompts[doc_id] = prompt
        if doc_id in groups:
            if groups[doc_id].outputs != outputs:
                raise SamplesFormatError(f"{where}: doc_id {doc_id} appears again with different responses")
            dup += 1  # the same doc logged once per filter pipeline
            continue
        groups[doc_id] = PromptGroup(
            doc_id=doc_id, outputs=outputs, doc=record.get("doc"), think_opened=_prompt_opened_think(record)
        )
    if not groups:
        raise SamplesFormatError(f"{path}: no samples in file")
    return SamplesFile(
        path=path,
        task=task,
        groups=list(groups.values()),
        n_lines=n_lines,
        n_duplicate_lines=dup,
        values=values,
        doc_hashes=hashes,
        prompts=prompts,
        correct=correct,
    )


def read_samples(paths: Iterable[str | Path]) -> dict[str, SamplesFile]:
    """Read every samples file under ``paths`` keyed by task; two files of one task are an error."""
    out: dict[str, SamplesFile] = {}
    for path in find_samples_files(paths):
        sf = read_samples_file(path)
        if sf.task in out:
            raise SamplesFormatError(
                f"two samples files for task {sf.task!r}: {out[sf.task].path} and {path}; "
                "pass one run's directory or the files themselves"
            )
        out[sf.task] = sf
    return out
