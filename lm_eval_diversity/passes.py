"""The one pass runner: every chosen metric of a task computed in one batched pass per input kind (docs in
:mod:`lm_eval_diversity.catalogue.metrics`).

:func:`run_passes` takes the sets of a task (each prompt's outputs, the corpus samples, the correct subsets) and the
chosen records; per input kind (and per model of the kind), the kind's pass builds its input once for the whole task
(the embeddings of every unique text, every unique NLI pair, the answer classes, ...) and computes every record of the
kind on all the sets at once. :data:`KIND_PASSES` is the one table of the passes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue.tasks import answer_classes_for_task
from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, prompt_rng
from lm_eval_diversity.quality.aggregate import QualityRule
from lm_eval_diversity.scoring_types import MetricModels, PromptGroup
from lm_eval_diversity.settings import DiversitySettings

NAN = float("nan")
QUALITY_WEIGHTED = ("qvendi",)  # embeddings records weighted by the rewards pass's ratings (fn(gram, ratings))


def corpus_positions(n_prompts: int, n_outputs: int, seed: int, size: int) -> tuple[list[int], list[int]]:
    """Subsets for the across-input and overall levels, drawn as the reference's offline path does.

    With ``RandomState(seed)``: first, if ``n_outputs >= size``, ``size`` of all outputs; then, if
    ``n_prompts >= size``, ``size`` of the first outputs; each drawn without replacement and sorted. Smaller sets
    are used whole. Returns (first-output prompt positions, flat output positions).
    """
    rs = np.random.RandomState(seed)
    overall = sorted(rs.choice(n_outputs, size, replace=False).tolist()) if n_outputs >= size else None
    first = sorted(rs.choice(n_prompts, size, replace=False).tolist()) if n_prompts >= size else None
    return (
        first if first is not None else list(range(n_prompts)),
        overall if overall is not None else list(range(n_outputs)),
    )


def corpus_sets_of(stripped: Sequence[Sequence[str]], settings: DiversitySettings) -> dict[str, list[int]]:
    """Flat output positions of the across-input set (first outputs) and the overall set of a task."""
    n_outputs = sum(len(t) for t in stripped)
    first_pos, overall_pos = corpus_positions(
        sum(bool(t) for t in stripped), n_outputs, settings.seed, settings.corpus_sample_size
    )
    offsets = np.cumsum([0] + [len(t) for t in stripped])
    has_first = [i for i, t in enumerate(stripped) if t]
    return {"across_input": [int(offsets[has_first[p]]) for p in first_pos], "overall": overall_pos}


def nli_sets_of(
    groups: Sequence[PromptGroup], stripped: Sequence[list[str]], settings: DiversitySettings, corpus: bool
) -> list[tuple[list[str], object]]:
    """The output sets NLI scores, each with its sentence-sampling key: one per prompt (empty when it has fewer
    than 2 outputs), then, with ``corpus``, the across-input and overall sets."""
    sets: list[tuple[list[str], object]] = [
        (list(texts) if len(texts) >= 2 else [], g.rng_key) for texts, g in zip(stripped, groups)
    ]
    if corpus:
        flat = [t for texts in stripped for t in texts]
        sets += [([flat[p] for p in pos], lvl) for lvl, pos in corpus_sets_of(stripped, settings).items()]
    return sets


@dataclass
class TaskInput:
    """What every pass of one task shares: the stripped outputs (and what stripping found), flat, and the sets to
    score.

    A set is a list of flat output positions; :meth:`prompt_sets` gives one per prompt (empty when the prompt has
    fewer outputs than the kind needs), ``corpus_sets`` maps each corpus level to its sample.
    """

    groups: Sequence[PromptGroup]
    stripped: list[list[str]]
    diagnostics: list[list[object]]
    settings: DiversitySettings
    models: MetricModels
    corpus_names: frozenset[str]
    correct: Sequence[Sequence[bool]] | None
    progress: bool
    verdicts: Sequence[Sequence[object]] | None = None  # graded tasks: the Verdict of each output, per prompt
    task_name: str | None = None  # the task's name (answer equality is the task's grader's)
    # graded tasks: the verdicts the accuracy metrics read (``MetricRecord.grading_path``; they differ from
    # ``verdicts`` only where the reference's two grading paths do), and how the verdicts are read (maj@K, IFEval)
    accuracy_verdicts: Sequence[Sequence[object]] | None = None
    quality_rule: QualityRule = field(default_factory=QualityRule)
    # set by the rewards pass (which runs before the embeddings pass): per prompt, each output's acceptable flag;
    # per flat output, its rating 1-10; and the pass's diagnostics
    acceptable: list[list[bool]] | None = None
    item_ratings: np.ndarray | None = None
    reward_diagnostics: dict | None = None
    flat: list[str] = field(init=False)
    flat_diagnostics: list[object] = field(init=False)
    corpus_sets: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.flat = [t for texts in self.stripped for t in texts]
        self.flat_diagnostics = [d for diag in self.diagnostics for d in diag]
        self.corpus_sets = corpus_sets_of(self.stripped, self.settings)

    def prompt_sets(self, min_outputs: int = 2) -> list[list[int]]:
        """Per prompt, the flat positions of its outputs; empty when it has fewer than ``min_outputs``."""
        offsets = np.cumsum([0] + [len(t) for t in self.stripped])
        return [
            list(range(int(offsets[i]), int(offsets[i + 1]))) if len(t) >= min_outputs else []
            for i, t in enumerate(self.stripped)
        ]

    def levels_for(self, recs: Sequence[catalogue.MetricRecord]) -> list[str]:
        """The corpus levels any of ``recs`` is computed at."""
        return list(self.corpus_sets) if any(r.name in self.corpus_names for r in recs) else []

    def subset_flags(self, subset: str) -> Sequence[Sequence[bool]] | None:
        """Per prompt, each output's membership of a subset: ``correct`` (the grader), ``acceptable`` (the reward
        model); None when the run has no such flags."""
        return {"correct": self.correct, "acceptable": self.acceptable}[subset]

    def correct_sets(self, subset: str = "correct") -> tuple[list[list[int]], list[list[int]]]:
        """Per prompt, all outputs and the outputs of ``subset`` (each empty unless it holds >= 2 outputs)."""
        flags_of = self.subset_flags(subset)
        if flags_of is None:
            raise ValueError(f"{subset}-subset sets need {subset} flags")
        if len(flags_of) != len(self.stripped):
            raise ValueError(f"{subset} has {len(flags_of)} prompts, expected {len(self.stripped)}")
        all_sets, corr_sets = [], []
        start = 0
        for texts, flags, g in zip(self.stripped, flags_of, self.groups):
            rows = list(range(start, start + len(texts)))
            start += len(texts)
            if len(flags) != len(rows):
                raise ValueError(f"doc_id {g.doc_id}: {len(flags)} {subset} flags for {len(rows)} outputs")
            chosen = [r for r, ok in zip(rows, flags) if ok]
            all_sets.append(rows if len(rows) >= 2 else [])
            corr_sets.append(chosen if len(chosen) >= 2 else [])
        return all_sets, corr_sets


@dataclass
class PassResults:
    """What the passes computed: per record, one value per prompt and its corpus-level values; per prompt, the
    correct-subset columns (``k_correct``, ``computable``, ``<m>_all``, ``<m>_correct``) in the order computed."""

    values: dict[str, list] = field(default_factory=dict)
    corpus: dict[str, dict[str, float]] = field(default_factory=dict)
    subsets: list[dict] = field(default_factory=list)


def run_passes(task: TaskInput, recs: Sequence[catalogue.MetricRecord]) -> PassResults:
    """Every record of ``recs`` on the task: one pass per input kind and model (in :data:`KINDS` order), each on
    the prompt sets and, for the records in ``task.corpus_names``, the corpus samples; with correctness flags, the
    kind's correct-subset variants too."""
    out = PassResults(subsets=[{} for _ in task.groups])
    for kind in catalogue.KINDS:
        for setting in dict.fromkeys(r.model_setting for r in recs if r.kind == kind):
            _kind_pass(task, kind, [r for r in recs if r.kind == kind and r.model_setting == setting], out)
    return out


def _kind_pass(task: TaskInput, kind: str, recs: list[catalogue.MetricRecord], out: PassResults) -> None:
    """One kind's batched pass: per-prompt values, corpus values, and (with correctness flags) the correct-subset
    variants of every record of the kind and model that has them."""
    if kind not in KIND_PASSES:
        names = ", ".join(r.name for r in recs)
        raise ValueError(f"metric(s) {names} of input kind {kind!r} have no scoring pass; they cannot be chosen")
    build, scores = KIND_PASSES[kind]
    prepared = build(task, recs)
    n = len(task.groups)
    levels = task.levels_for(recs)
    values = scores(task, prepared, recs, task.prompt_sets(catalogue.KINDS[kind].min_outputs)
                    + [task.corpus_sets[lvl] for lvl in levels])  # fmt: skip
    for r in recs:
        out.values[r.name] = values[r.name][:n]
        if r.name in task.corpus_names:
            out.corpus[r.name] = {lvl: values[r.name][n + j] for j, lvl in enumerate(levels)}
    model = recs[0].model_setting
    variants = [r for r in catalogue.records() if r.kind == kind and r.correct_variants and r.model_setting == model]
    if task.correct is not None and variants:
        _correct_variants(task, prepared, scores, variants, out.subsets)
    acceptable = [r for r in variants if "correct" in r.correct_variants and r.on is None]
    if task.acceptable is not None and acceptable:
        _acceptable_variants(task, prepared, scores, acceptable, out.subsets)


def _correct_variants(task: TaskInput, prepared, scores, recs, subsets: list[dict]) -> None:
    """``<m>_all``, ``<m>_correct`` per prompt, after ``k_correct`` and ``computable`` (>= 2 correct outputs)."""
    all_sets, corr_sets = task.correct_sets()
    over_all = scores(task, prepared, recs, all_sets)
    over_correct = scores(task, prepared, recs, corr_sets)
    for i, row in enumerate(subsets):
        row.setdefault("k_correct", int(sum(task.correct[i])))  # type: ignore[index]
        row.setdefault("computable", float(bool(corr_sets[i])))
        for r in recs:
            for variant in r.correct_variants:
                row[f"{r.name}_{variant}"] = (over_all if variant == "all" else over_correct)[r.name][i]


def _acceptable_variants(task: TaskInput, prepared, scores, recs, subsets: list[dict]) -> None:
    """``<m>_acceptable`` per prompt over the reward-acceptable outputs (NaN with fewer than 2), with
    ``acceptable_computable`` (docs/quality.md)."""
    _, sets = task.correct_sets("acceptable")
    over = scores(task, prepared, recs, sets)
    for i, row in enumerate(subsets):
        row["acceptable_computable"] = float(bool(sets[i]))
        for r in recs:
            row[f"{r.name}_acceptable"] = over[r.name][i]


# Each kind has two steps: ``build(task, records)`` makes the kind's input once per task (the embeddings of every
# unique text; nothing for kinds that read the texts directly), and ``scores(task, built, records, sets)`` returns
# ``{name: one value per set}`` for many sets at once, NaN for an empty set (the ``stripped`` and ``verdicts`` kinds
# score every prompt, even one without outputs). The per-prompt sets, the corpus samples and the correct subsets all
# reuse one build.


def _stripped_scores(task: TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """What CoT stripping found, per prompt (``fn(texts, diagnostics)``)."""
    return {
        r.name: [r.fn([task.flat[p] for p in s], [task.flat_diagnostics[p] for p in s]) for s in sets] for r in recs
    }


def _no_input(task: TaskInput, recs) -> None:
    return None


def _texts_scores(task: TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    out = {}
    for r in recs:
        filled = [i for i, s in enumerate(sets) if s]
        values = r.fn([[task.flat[p] for p in sets[i]] for i in filled], task.settings) if filled else []
        column = [NAN] * len(sets)
        for i, v in zip(filled, values):
            column[i] = float(v)
        out[r.name] = column
    return out


def _embeddings_input(task: TaskInput, recs):
    """Every unique text of the task embedded once; returns (float64 embeddings, row of each flat output, None for
    an output with nothing to embed). What of an output is embedded depends on the model (:func:`embedded_texts`)."""
    from lm_eval_diversity.models import embed_texts, unique_texts

    setting = recs[0].model_setting
    model = task.models.for_setting(setting)
    texts = embedded_texts(task.flat, setting)
    uniq = unique_texts([t for t in texts if t is not None])
    embeddings = embed_texts(model, uniq.texts, task.settings.batch_size, progress=task.progress)
    return embeddings.astype(np.float64), [None if t is None else uniq.index[t] for t in texts]


def _embeddings_scores(task: TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Gram-matrix metrics of many sets, batched by set size (one Gram matrix per set, shared by the records).
    Outputs with nothing to embed (empty code) leave their set; a set that loses some and keeps fewer than 2 is NaN."""
    emb, rows = prepared
    kept = [[p for p in s if rows[p] is not None] for s in sets]
    sets = [k if len(k) == len(s) or len(k) >= 2 else [] for s, k in zip(sets, kept)]
    out = {r.name: np.full(len(sets), NAN) for r in recs}
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, positions in enumerate(sets):
        by_size[len(positions)].append(i)
    for size, members in by_size.items():
        if size == 0:
            continue
        stacked = emb[np.asarray([[rows[p] for p in sets[i]] for i in members])]  # (b, m, d)
        g = stacked @ np.swapaxes(stacked, -1, -2)
        for r in recs:
            if r.name in QUALITY_WEIGHTED:  # the Gram matrix and the ratings of the set's outputs
                if task.item_ratings is not None:
                    out[r.name][members] = r.fn(g, task.item_ratings[np.asarray([sets[i] for i in members])])
                continue
            out[r.name][members] = r.fn(g)
    return {name: [float(v) for v in arr] for name, arr in out.items()}


def _nli_scores_of(task: TaskInput, prepared, recs, sets: list[list[int]], keys: list) -> dict[str, list[float]]:
    model = task.models.for_setting(recs[0].model_setting)
    texts = [([task.flat[p] for p in s], key) for s, key in zip(sets, keys)]
    aligned = aligned_pairs_of(texts, task.settings)
    index = directional_pairs(aligned)
    w = model.entail_minus_contradict(list(index), batch_size=task.settings.batch_size, progress=task.progress)
    return {
        r.name: [float(r.fn(pairs, lambda a, b: w[index[(a, b)]])) if s else NAN for pairs, s in zip(aligned, sets)]
        for r in recs
    }


def _nli_pair_scores(task: TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Sentence sampling is seeded per set: a prompt's ``rng_key``, a corpus sample's level name."""
    n = len(task.groups)
    keys = [g.rng_key for g in task.groups][: len(sets)] + list(task.corpus_sets)[: max(0, len(sets) - n)]
    return _nli_scores_of(task, prepared, recs, sets, keys)


def aligned_pairs_of(sets: Sequence[tuple[list[str], object]], settings: DiversitySettings) -> list[list]:
    """Aligned sentence pairs of each NLI set, drawn with the set's own RNG."""
    return [
        aligned_sentence_pairs(texts, prompt_rng(settings.seed, key), settings.nli_max_sentences) for texts, key in sets
    ]


def directional_pairs(aligned: Sequence[Sequence[tuple[str, str]]]) -> dict[tuple[str, str], int]:
    """Every unique (premise, hypothesis) pair the sets need, both directions, numbered in first-use order."""
    index: dict[tuple[str, str], int] = {}
    for pairs in aligned:
        for a, b in pairs:
            index.setdefault((a, b), len(index))
            index.setdefault((b, a), len(index))
    return index


# --- graded tasks: quality, answer classes, functional classes; AST (docs/metrics.md) -----------------------------


def _flat_verdicts(task: TaskInput) -> list:
    if task.verdicts is None or len(task.verdicts) != len(task.stripped):
        raise ValueError("answer-level and functional-class diversity need the grader's verdicts of every prompt")
    return [list(vs) for vs in task.verdicts]


def _answer_classes(task: TaskInput, recs) -> list:
    """The answer class of every flat output, ``(prompt, class)``, or None (no extracted answer): the task's own
    equality (its grader's), per prompt (math: math-verify in grading workers with the grader's timeout)."""
    out: list = []
    for i, vs in enumerate(_flat_verdicts(task)):
        classes = answer_classes_for_task(task.task_name or "", vs, math_mode=task.settings.math_mode)
        out += [None if c is None else (i, c) for c in classes]
    return out


def _behaviour_classes(task: TaskInput, recs) -> list:
    """The behaviour signature of every flat program (``Verdict.behaviour``), or None (no signature)."""
    return [v.behaviour for vs in _flat_verdicts(task) for v in vs]


def _verdict_scores(task: TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list]:
    """Quality of each prompt from its outputs' verdicts (``fn(verdicts, rule)``, the verdicts of the record's
    ``grading_path``; a record with ``weight`` gives its share and the count)."""
    subsets = [v for vs in _flat_verdicts(task) for v in vs]
    flat = {"subsets": subsets, "accuracy": subsets}
    if task.accuracy_verdicts is not None and task.accuracy_verdicts is not task.verdicts:
        flat["accuracy"] = [v for vs in task.accuracy_verdicts for v in vs]
        if len(flat["accuracy"]) != len(subsets):
            raise ValueError("the accuracy verdicts must grade the same outputs as the verdicts")
    return {r.name: [r.fn([flat[r.grading_path][p] for p in s], task.quality_rule) for s in sets] for r in recs}


def _class_scores(task: TaskInput, classes: list, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Class statistics of each set (each record's ``fn`` maps a set's classes to its value), NaN for an empty set.
    Classes carry their prompt, so they are only compared within a prompt."""
    return {r.name: [float(r.fn([classes[p] for p in s])) if s else NAN for s in sets] for r in recs}


def _subtree_cache(task: TaskInput, recs):
    from lm_eval_diversity.metrics.code_ast import SubtreeCache

    return SubtreeCache()


def _code_scores(task: TaskInput, cache, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """AST metrics of each set (every program parsed once per task), NaN for an empty set."""
    from lm_eval_diversity.metrics.code_ast import ast_metrics

    results = [ast_metrics([task.flat[p] for p in s], cache=cache).as_dict() if s else None for s in sets]
    return {r.name: [NAN if res is None else float(res[r.name]) for res in results] for r in recs}


# --- model-based beyond-paper metrics ---------------------------------------------------------------------------


def embedded_texts(flat: Sequence[str], model_setting: str | None) -> list[str | None]:
    """What the embedding model of ``model_setting`` embeds of each stripped output: the code model the extracted
    code (:func:`lm_eval_diversity.metrics.code_ast.code_text`; None, i.e. dropped, when empty, as the paper's
    code-diversity script does), any other model the text itself."""
    if model_setting != "code_model":
        return list(flat)
    from lm_eval_diversity.metrics.code_ast import code_text

    return [code_text(t) or None for t in flat]


def _nli_matrix_scores(task: TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Semantic clusters of many sets from one batched NLI pass over every whole-output pair they need
    (:func:`lm_eval_diversity.metrics.semantic.cluster_pairs`: unique directional pairs, each scored once)."""
    from lm_eval_diversity.metrics.semantic import cluster_pairs, clusters_from_scores

    filled = [i for i, s in enumerate(sets) if s]
    texts = [[task.flat[p] for p in sets[i]] for i in filled]
    pairs = cluster_pairs(texts)
    if pairs:
        model = task.models.for_setting(recs[0].model_setting)
        probs = model.label_probs(pairs, batch_size=task.settings.batch_size, progress=task.progress)
    else:
        probs = np.zeros((0, 3))
    stats = clusters_from_scores(texts, pairs, probs, rule=task.settings.semantic_rule)
    out = {r.name: [NAN] * len(sets) for r in recs}
    for i, st in zip(filled, stats):
        for r in recs:
            out[r.name][i] = float(r.fn(st))
    return out


# --- reward model (docs/quality.md, "Reward model") -----------------------------------------------------------------


def _rewards_input(task: TaskInput, recs):
    """Every output's reward (each distinct (prompt, output) once) and its calibration; the acceptable flags and
    ratings are left on the task for the embeddings pass (acceptable subsets, quality-weighted Vendi)."""
    from lm_eval_diversity.quality.reward import task_rewards

    model = task.models.for_setting("quality_model")
    tr = task_rewards(task.task_name or "", task.groups, task.stripped, model, task.settings, task.progress)
    offsets = np.cumsum([0] + [len(t) for t in task.stripped])
    task.acceptable = [tr.acceptable[offsets[i] : offsets[i + 1]].tolist() for i in range(len(task.stripped))]
    task.item_ratings = tr.ratings
    task.reward_diagnostics = tr.diagnostics
    return tr


def _rewards_scores(task: TaskInput, tr, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Reward statistics of each set (in output order), NaN for an empty set."""
    from lm_eval_diversity.metrics.reward import RewardSet

    out = {r.name: [NAN] * len(sets) for r in recs}
    for i, s in enumerate(sets):
        if not s:
            continue
        idx = np.asarray(s)
        view = RewardSet(tr.rewards[idx], tr.ratings[idx], tr.acceptable[idx], tuple(task.flat[p] for p in s))
        for r in recs:
            out[r.name][i] = float(r.fn(view))
    return out

KIND_PASSES = {  # input kind -> (build, scores); the baseline kind is computed against a baseline run (analysis)
    "stripped": (_no_input, _stripped_scores),
    "texts": (_no_input, _texts_scores),
    "embeddings": (_embeddings_input, _embeddings_scores),
    "nli_pairs": (_no_input, _nli_pair_scores),
    "verdicts": (_no_input, _verdict_scores),
    "nli_matrix": (_no_input, _nli_matrix_scores),
    "answers": (_answer_classes, _class_scores),
    "behaviours": (_behaviour_classes, _class_scores),
    "code": (_subtree_cache, _code_scores),
    "rewards": (_rewards_input, _rewards_scores),
}
