"""The batched passes of the input kinds (docs in :mod:`lm_eval_diversity.catalogue.metrics`): the sets of a task
(each prompt's outputs, the corpus samples, the correct subsets) and, per kind, one pass that builds the kind's
input once for the whole task and computes every chosen record on all the sets at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, prompt_rng
from lm_eval_diversity.settings import DiversitySettings

if TYPE_CHECKING:
    from lm_eval_diversity.scoring import MetricModels, PromptGroup

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
    """What every pass of one task shares: the stripped outputs, flat, and the sets to score.

    A set is a list of flat output positions; ``prompt_sets[i]`` is empty when prompt i has fewer than 2
    outputs (diversity undefined), ``corpus_sets`` maps each corpus level to its sample.
    """

    groups: Sequence[PromptGroup]
    stripped: list[list[str]]
    settings: DiversitySettings
    models: MetricModels
    corpus_names: frozenset[str]
    correct: Sequence[Sequence[bool]] | None
    progress: bool
    verdicts: Sequence[Sequence[object]] | None = None  # graded tasks: the Verdict of each output, per prompt
    task_name: str | None = None  # the task's name (answer equality is the task's grader's)
    # set by the rewards pass (which runs before the embeddings pass): per prompt, each output's acceptable flag;
    # per flat output, its rating 1-10; and the pass's diagnostics
    acceptable: list[list[bool]] | None = None
    item_ratings: np.ndarray | None = None
    reward_diagnostics: dict | None = None
    flat: list[str] = field(init=False)
    prompt_sets: list[list[int]] = field(init=False)
    corpus_sets: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.flat = [t for texts in self.stripped for t in texts]
        offsets = np.cumsum([0] + [len(t) for t in self.stripped])
        self.prompt_sets = [
            list(range(int(offsets[i]), int(offsets[i + 1]))) if len(t) >= 2 else []
            for i, t in enumerate(self.stripped)
        ]
        self.corpus_sets = corpus_sets_of(self.stripped, self.settings)

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


# Each kind has two steps: ``build(task, records)`` makes the kind's input once per task (the embeddings of every
# unique text; nothing for kinds that read the texts directly), and ``scores(task, built, records, sets)`` returns
# ``{name: one value per set}`` for many sets at once, NaN for an empty set. The per-prompt sets, the corpus
# samples and the correct subsets all reuse one build.


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


KIND_PASSES = {  # input kind -> (build, scores); the kinds without a pass here are computed by score_task
    "texts": (_no_input, _texts_scores),
    "embeddings": (_embeddings_input, _embeddings_scores),
    "nli_pairs": (_no_input, _nli_pair_scores),
}


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


# --- answer classes, functional classes, AST (docs/metrics.md, last sections) -------------------------------------


def _flat_verdicts(task: TaskInput) -> list:
    if task.verdicts is None or len(task.verdicts) != len(task.stripped):
        raise ValueError("answer-level and functional-class diversity need the grader's verdicts of every prompt")
    return [list(vs) for vs in task.verdicts]


def _answer_classes(task: TaskInput, recs) -> list:
    """The answer class of every flat output, ``(prompt, class)``, or None (no extracted answer): the task's own
    equality, per prompt (math: math-verify in grading workers with the grader's timeout)."""
    from lm_eval_diversity.quality.equivalence import answer_classes_for_task

    out: list = []
    for i, vs in enumerate(_flat_verdicts(task)):
        classes = answer_classes_for_task(task.task_name or "", vs, math_mode=task.settings.math_mode)
        out += [None if c is None else (i, c) for c in classes]
    return out


def _behaviour_classes(task: TaskInput, recs) -> list:
    """The behaviour signature of every flat program (``Verdict.behaviour``), or None (no signature)."""
    return [v.behaviour for vs in _flat_verdicts(task) for v in vs]


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


KIND_PASSES.update(
    {
        "answers": (_answer_classes, _class_scores),
        "behaviours": (_behaviour_classes, _class_scores),
        "code": (_subtree_cache, _code_scores),
    }
)


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


KIND_PASSES["nli_matrix"] = (_no_input, _nli_matrix_scores)


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


KIND_PASSES["rewards"] = (_rewards_input, _rewards_scores)
