"""The metric catalogue: one frozen :class:`MetricRecord` per metric, from which everything that names a metric
derives (the settings' valid and default metrics, the scoring passes, and, in :mod:`lm_eval_diversity.catalogue.views`,
the lm-eval ``metric_list`` of the task templates, the groups' aggregate list, the rows the results table shows and
the docs table).

Input kinds
-----------
A metric consumes one *input kind*. Scoring builds each kind's input once per task, in one batched pass over every
set the task needs (each prompt's outputs, the across-input and overall corpus samples, and on graded tasks each
prompt's correct outputs), then calls every chosen record of that kind on all the sets at once
(:mod:`lm_eval_diversity.passes`). A metric of an existing kind is therefore one function and one record. The kinds
(:data:`KINDS`):

* ``stripped``: per output, the CoT-stripped text and what stripping found (an unclosed thought). Per prompt
  only; no model. ``fn(texts, diagnostics) -> float``. The diagnostics ``dup_rate``, ``empty_rate``,
  ``unclosed_think_rate``.
* ``texts``: the stripped texts of each set. ``fn(sets: list[list[str]], settings) -> list[float]``, one value
  per set; an empty set is never passed (its value is NaN). No model. EAD and the lexical measures (compression
  ratio, n-gram diversity, self-repetition, ROUGE-L homogenization, distinct-n, self-BLEU; ``lexical_mode``).
* ``embeddings``: the cosine Gram matrix of each set's L2-normalised embeddings, from the sentence-embedding
  model the record's ``model_setting`` names. Every unique text is embedded once per model; sets are batched by
  size. ``fn(gram: (b, m, m)) -> (b,)``. SBERT diversity, Vendi; the same over the code model (``code_model``:
  what it embeds of an output is the extracted code, empty code dropped; ``passes.embedded_texts``).
* ``nli_pairs``: the aligned sentence pairs of each set (sampled per set with its own seeded RNG) and P_E - P_C of
  both directions; every unique directional pair is scored once for the whole task. ``fn(pairs, weight) ->
  float`` with ``weight(premise, hypothesis)``. NLI diversity.
* ``nli_matrix``: the semantic clusters of each set (bidirectional entailment of whole outputs, every unique
  directional output pair scored once for the whole task). ``fn(stats: dict) -> float`` reads one of the cluster
  statistics (``metrics.semantic.cluster_stats``). Semantic clusters.
* ``verdicts``: the grader's verdicts of one prompt's outputs (graded tasks). ``fn(verdicts, rule) -> float``, the
  rule being how the task's grader reads them (``quality.aggregate.QualityRule``). Accuracy,
  pass@k, maj@K, k_correct, extraction rate, IFEval's levels (a record with ``weight`` returns its share and the
  count it is a share of).
* ``baseline``: this run's and a baseline run's per-prompt values; task-level. The QC/residual split.
* ``answers``: the answer class of each output by the task's own equality (its grader's; graded runs of tasks whose
  outputs are answers). ``fn(classes) -> float`` per set. Distinct answers, answer entropy, no-answer rate.
* ``behaviours``: the sandbox's behaviour signature of each program (``Verdict.behaviour``, asked of the grader only
  when such a metric is chosen). ``fn(signatures) -> float`` per set. Functional classes.
* ``code``: the AST subtree profile of each output's code, every distinct program parsed once per task. The AST
  distinct ratio, pairwise distance and parseability rate (also on the correct subset).
* ``rewards``: the reward model's score of each output (``quality_model``; every distinct (prompt, output) scored
  once per task), with the 1-10 ratings and the acceptable flags of the reference run's calibration. ``fn(rewards,
  ratings, acceptable, texts) -> float`` per set. Mean reward and rating, acceptable rate, NoveltyBench's
  distinct_k / utility_k, and the quality factor of quality-weighted Vendi. The acceptable flags also select the
  ``<m>_acceptable`` subsets of the metrics with ``correct_variants`` (quality-filtered diversity on every task).

Any kind can run on the correct subset of a prompt: a record's ``correct_variants`` derives the
``<name>_all`` / ``<name>_correct`` records, and ``split`` the ``loss_``/``residual_``/``qc_`` records of the
QC/residual split (docs/decomposition.md). A record defined on some tasks only says which with ``on``, a test of the
task record (its category, what its grader makes of an output): no metric record names a task.

Functions are referenced with :func:`lm_eval_diversity.lazy.lazy` (imported on first call), as the catalogue is read
by commands that must start fast. Extension: :func:`register_metric` adds a record at run time (selectable with
``metrics`` like a shipped one; :func:`registered` for a block); the harness adds the lm-eval entries of registered
records to every diversity task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from lm_eval_diversity.catalogue.tasks import CODE, TaskRecord, find_task, task_records
from lm_eval_diversity.lazy import lazy
from lm_eval_diversity.modes import CompatPath

LEVELS = ("per_input", "across_input", "overall")
CORPUS_LEVELS = ("across_input", "overall")
QUALITY_KS = (1, 5, 10, 16)  # the protocol's k of pass@k (the run's own K is added at run time)
AGGREGATIONS = {  # a record's ``aggregation`` -> the lm-eval aggregation of the task YAMLs (name or function path)
    "mean": "mean",
    "nanmean": "lm_eval_diversity.harness.nanmean",
    "corpus": "lm_eval_diversity.harness.corpus_value",
    "inst_level": "lm_eval_diversity.harness.inst_level_mean",
}


@dataclass(frozen=True)
class InputKind:
    """What a family of metrics consumes, and the model setting its pass needs (None: no model).

    ``min_outputs``: a prompt's outputs form a set of this kind when there are at least this many (diversity among
    outputs needs 2; per-output rates and quality are defined on any number).
    """

    name: str
    consumes: str
    model_setting: str | None = None
    min_outputs: int = 2


VERDICT_KINDS = ("answers", "behaviours")  # kinds read from the grader's verdicts (graded tasks only)
KINDS: dict[str, InputKind] = {
    k.name: k
    for k in (
        InputKind("stripped", "CoT-stripped outputs of one prompt with their stripping diagnostics", min_outputs=0),
        InputKind("texts", "CoT-stripped texts of a set"),
        # before embeddings: its acceptable flags and ratings feed the acceptable subsets and quality-weighted Vendi
        InputKind("rewards", "reward-model scores of a set's outputs, calibrated on a reference run", "quality_model"),
        InputKind("embeddings", "cosine Gram matrix of a set's sentence embeddings", "sbert_model"),
        InputKind("nli_pairs", "aligned sentence pairs of a set, P(entail) - P(contradict) both ways", "nli_model"),
        InputKind("verdicts", "grader verdicts of a prompt's outputs", min_outputs=0),
        InputKind("nli_matrix", "semantic clusters of a set: bidirectional entailment of whole outputs", "nli_model"),
        InputKind("baseline", "per-prompt values of this run and of a baseline run"),
        InputKind("answers", "answer classes of a set's outputs by the task's own equality (grader verdicts)"),
        InputKind("behaviours", "behaviour signatures of a set's programs from the sandboxed tests (verdicts)"),
        InputKind("code", "AST subtree profiles of the code of a set's outputs (longest fenced block)"),
    )
}


@dataclass(frozen=True)
class MetricRecord:
    """One metric.

    ``fn`` computes it from its kind's input (module docstring). ``levels``: where it is reported (``per_input``
    mean/std over prompts; ``across_input``/``overall``, the corpus levels, only for records with ``corpus``).
    ``aggregation``: how lm-eval aggregates its per-doc values (:data:`AGGREGATIONS`). ``selectable``: chosen with
    the ``metrics`` setting (``default``: on without it; ``corpus_default``: its corpus levels on without
    ``corpus_metrics`` in the commands). ``graded``: reported on graded tasks only; ``on``: only on the tasks whose
    record passes this test (None: every task). ``harness``: in the lm-eval results (else ``score`` only).
    ``requires``: the selectable metric a derived record comes from (shown only when it runs). ``weight``: the
    per-prompt value is a share of that many items (``fn`` returns the share and the count; rows keep the count under
    this name), pooled over every item of every prompt (``aggregation="inst_level"``). ``grading_path``
    (``verdicts`` kind): where the reference's two grading paths differ (compat modes), whether it reads the
    verdicts of its accuracy scripts (``"accuracy"``) or of its QFD script (``"subsets"``, as the correct subsets do).
    """

    name: str
    kind: str
    description: str
    fn: Callable | None = None
    corpus: bool = False
    model_setting: str | None = None
    higher_is_better: bool = True
    aggregation: str = "mean"
    selectable: bool = False
    default: bool = False
    corpus_default: bool = False
    graded: bool = False
    on: Callable[[TaskRecord], bool] | None = None
    harness: bool = True
    correct_variants: tuple[str, ...] = ()
    split: bool = False
    requires: str | None = None
    weight: str | None = None
    grading_path: CompatPath = "accuracy"
    inputs: str = field(default="", compare=False)  # docs table: what it is computed on ("" = the kind's)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: unknown input kind {self.kind!r}; one of {list(KINDS)}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.name!r}: unknown aggregation {self.aggregation!r}")
        if self.model_setting is None and KINDS[self.kind].model_setting is not None:
            object.__setattr__(self, "model_setting", KINDS[self.kind].model_setting)

    @property
    def levels(self) -> tuple[str, ...]:
        return LEVELS if self.corpus else ("per_input",)


# --- which tasks a record is defined on: tests of the task record ----------------------------------------------


def answer_tasks(task: TaskRecord) -> bool:
    """Tasks whose outputs carry a final answer with the grader's own equality (answer classes)."""
    return task.output_kind == "answer"


def program_tasks(task: TaskRecord) -> bool:
    """Tasks whose outputs are programs run against tests (AST profiles, functional classes)."""
    return task.output_kind == "program"


def code_tasks(task: TaskRecord) -> bool:
    """Tasks of the code category (the paper's code-embedding diversity: programs and predicted outputs)."""
    return task.category == CODE


def instruction_tasks(task: TaskRecord) -> bool:
    """Tasks whose grader checks instructions one by one (instruction-level accuracies)."""
    return task.grader is not None and task.grader.instruction_levels


# --- the paper's four -------------------------------------------------------------------------------------------


def per_set(fn: Callable, *settings_fields: str) -> Callable:
    """A ``texts``-kind function from a function of one set: ``fn(texts, *values)`` on each set, the values being the
    run's settings named by ``settings_fields`` (``per_set(ead, "vocab_size")``)."""

    def over_sets(sets, settings) -> list[float]:
        values = [getattr(settings, name) for name in settings_fields]
        return [fn(texts, *values) for texts in sets]

    over_sets.__qualname__ = over_sets.__name__ = fn.__name__
    return over_sets


_PRIMARY = (
    MetricRecord(
        "ead", "texts", "expectation-adjusted distinct n-grams, n = 1..5",
        per_set(lazy("lm_eval_diversity.metrics.ngram", "ead"), "vocab_size"), corpus=True,
        selectable=True, default=True, corpus_default=True,
    ),
    MetricRecord(
        "sbert", "embeddings", "1 - mean pairwise cosine similarity of sentence embeddings",
        lazy("lm_eval_diversity.metrics.embedding", "sbert_diversity_from_gram"), corpus=True, selectable=True,
        default=True, corpus_default=True, correct_variants=("all", "correct"), split=True,
    ),
    MetricRecord(
        "vendi", "embeddings", "Vendi score (exp entropy of the cosine Gram spectrum)",
        lazy("lm_eval_diversity.metrics.embedding", "vendi_from_gram"), corpus=True, selectable=True, default=True,
        corpus_default=True, correct_variants=("correct",), split=True,
    ),
    MetricRecord(
        "nli", "nli_pairs", "1 - mean P(entail) - P(contradict) over aligned sentence pairs",
        lazy("lm_eval_diversity.metrics.nli", "nli_diversity"), corpus=True, selectable=True, default=True,
    ),
)  # fmt: skip

PAPER_METRICS = tuple(r.name for r in _PRIMARY)  # the paper's four


# --- what CoT stripping found ------------------------------------------------------------------------------------


def _rate(texts, diagnostics, test) -> float:
    return sum(map(test, texts, diagnostics)) / len(texts) if texts else float("nan")


_DIAGNOSTICS = (
    MetricRecord(
        "dup_rate", "stripped", "(K - distinct outputs) / K",
        lambda texts, diag: (len(texts) - len(set(texts))) / len(texts) if texts else float("nan"),
        higher_is_better=False,
    ),
    MetricRecord(
        "empty_rate", "stripped", "share of outputs empty after CoT stripping",
        lambda texts, diag: _rate(texts, diag, lambda t, d: t == ""), higher_is_better=False,
    ),
    MetricRecord(
        "unclosed_think_rate", "stripped", "share of outputs with a thought never closed",
        lambda texts, diag: _rate(texts, diag, lambda t, d: d.unclosed_think), higher_is_better=False,
    ),
)  # fmt: skip


# --- quality on graded tasks (formulas: lm_eval_diversity.quality.aggregate) ---------------------------------------

_AGGREGATE = "lm_eval_diversity.quality.aggregate"
_pass_at = lazy(_AGGREGATE, "pass_at")


def _pass_at_k(k: int) -> MetricRecord:
    """The record of ``pass@k`` (any k >= 1: the protocol's, or the run's own K)."""

    def fn(verdicts, rule) -> float:
        return _pass_at(verdicts, k)

    fn.__qualname__ = fn.__name__ = f"pass_at_{k}"
    return MetricRecord(
        f"pass@{k}", "verdicts", f"unbiased pass@{k} (NaN for k > K)", fn, graded=True, aggregation="nanmean"
    )


_QUALITY = (
    MetricRecord("acc", "verdicts", "output #0 correct", lazy(_AGGREGATE, "accuracy"), graded=True),
    *(_pass_at_k(k) for k in QUALITY_KS),
    MetricRecord("maj@K", "verdicts", "majority answer correct (ties incorrect)",
                 lazy(_AGGREGATE, "majority_correct"), graded=True),
    MetricRecord("k_correct", "verdicts", "number of correct outputs", lazy(_AGGREGATE, "correct_count"),
                 graded=True, grading_path="subsets"),
    MetricRecord("extraction_rate", "verdicts", "share of outputs with an extracted answer",
                 lazy(_AGGREGATE, "extraction_rate"), graded=True, harness=False),
)  # fmt: skip


def quality_ks(k: int) -> tuple[int, ...]:
    """The k of pass@k reported for K samples: the protocol's (1, 5, 10, 16) up to K, and K itself (pass@k is
    undefined for k > K, so it is not reported rather than reported null)."""
    return tuple(sorted({*(q for q in QUALITY_KS if q <= k), k})) if k >= 1 else ()


_IFEVAL = (
    MetricRecord("prompt_level_loose_acc", "verdicts", "output #0 follows all instructions (loose)",
                 lazy(_AGGREGATE, "all_instructions_loose"), graded=True, on=instruction_tasks),
    MetricRecord("inst_level_strict_acc", "verdicts", "share of followed instructions, all prompts (strict)",
                 lazy(_AGGREGATE, "instructions_followed_strict"), graded=True, on=instruction_tasks,
                 aggregation="inst_level", weight="n_instructions"),
    MetricRecord("inst_level_loose_acc", "verdicts", "share of followed instructions, all prompts (loose)",
                 lazy(_AGGREGATE, "instructions_followed_loose"), graded=True, on=instruction_tasks,
                 aggregation="inst_level", weight="n_instructions"),
)  # fmt: skip


# --- beyond the paper: lexical measures, answer and functional classes, AST (docs/metrics.md, last sections) --------

_DISTINCT_ORDERS = (1, 2, 3, 4)


def _lexical_sets(measure: str) -> Callable:
    """One lexical measure (``lm_eval_diversity.metrics.lexical``) of each set in the run's ``lexical_mode``
    (``texts`` kind); ROUGE-L homogenization batches the LCS of all the task's sets at once."""

    def fn(sets, settings) -> list[float]:
        from lm_eval_diversity.metrics import lexical

        mode = settings.lexical_mode
        if measure == "homogenization_rougel":
            return lexical.homogenization_rouge_l_groups(sets, mode)
        one = {
            "compression_ratio": lambda t: lexical.compression_ratio(t, mode),
            "ngram_diversity": lambda t: lexical.ngram_diversity_score(t, mode=mode),
            "self_repetition": lambda t: lexical.self_repetition_score(t, mode=mode),
            "self_bleu": lexical.self_bleu,
            **{f"distinct_{n}": (lambda t, n=n: lexical.distinct_n(t, n)) for n in _DISTINCT_ORDERS},
        }[measure]
        return [one(texts) for texts in sets]

    fn.__qualname__ = fn.__name__ = measure
    return fn


# True: a higher value means more diverse outputs (lm_eval_diversity.metrics.lexical.HIGHER_IS_BETTER, which a test
# checks against these records; the catalogue does not import the module so that commands start fast).
_LEXICAL = {
    "compression_ratio": ("bytes / gzip bytes of the texts joined by a space", False),
    "ngram_diversity": ("sum over n = 1..4 of distinct n-grams / n-grams", True),
    "self_repetition": ("mean log(1 + 4-grams shared with the other outputs)", False),
    "homogenization_rougel": ("mean pairwise ROUGE-L F1", False),
    **{f"distinct_{n}": (f"distinct {n}-grams / {n}-grams, pooled over the outputs", True) for n in _DISTINCT_ORDERS},
    "self_bleu": ("mean sentence BLEU of each output against the others (0..1)", False),
}
_answer_diversity = lazy("lm_eval_diversity.metrics.answers", "answer_diversity")
_functional_diversity = lazy("lm_eval_diversity.metrics.answers", "functional_diversity")


def _answers(key: str) -> Callable:
    """One statistic of a set's answer classes (``answers`` kind)."""
    return lambda classes: _answer_diversity(classes)[key]


def _behaviours(key: str) -> Callable:
    """One statistic of a set's behaviour signatures (``behaviours`` kind)."""
    return lambda signatures: _functional_diversity(signatures)[key]


_CLASS_METRICS = (  # (kind, statistic, on, {name: (description, higher_is_better)})
    ("answers", _answers, answer_tasks, {
        "distinct_answers": ("distinct answer classes among the K outputs (no answer: one class)", True),
        "distinct_answers_norm": ("distinct answer classes / K", True),
        "answer_entropy": ("entropy (nats) of the answer classes", True),
        "no_answer_rate": ("share of outputs without an extracted answer", False),
    }),
    ("behaviours", _behaviours, program_tasks, {
        "distinct_behaviours": ("functional classes (same behaviour on the tests) among the K programs", True),
        "distinct_behaviours_norm": ("functional classes / K", True),
        "behaviour_entropy": ("entropy (nats) of the functional classes", True),
        "unrunnable_rate": ("share of programs without a behaviour signature", False),
    }),
)  # fmt: skip


# Beyond the paper's four, model-free (docs/metrics.md, last sections): per-input and on by default, as they cost
# no model call. A lexical or AST value can be undefined on one prompt (e.g. distinct_4 when no output has 4 words),
# so those average over the prompts where they are defined (nanmean). Homogenization has no corpus levels: its
# overall level would be ROUGE-L over every pair of the overall sample (about 125,000 pairs at the default size).
_BEYOND_FREE = (
    *(
        MetricRecord(
            name,
            "texts",
            desc,
            _lexical_sets(name),
            corpus=name != "homogenization_rougel",
            higher_is_better=higher,
            selectable=True,
            default=True,
            aggregation="nanmean",
        )
        for name, (desc, higher) in _LEXICAL.items()
    ),
    *(
        MetricRecord(
            name,
            kind,
            desc,
            fn(name),
            higher_is_better=higher,
            selectable=True,
            default=True,
            on=on,
        )
        for kind, fn, on, measures in _CLASS_METRICS
        for name, (desc, higher) in measures.items()
    ),
    MetricRecord(
        "ast_distinct",
        "code",
        "distinct / pooled AST subtrees of height 4",
        selectable=True,
        default=True,
        on=program_tasks,
        correct_variants=("correct",),
        aggregation="nanmean",
    ),
    MetricRecord(
        "ast_pairwise",
        "code",
        "mean pairwise multiset-Jaccard distance of AST subtree profiles",
        selectable=True,
        default=True,
        on=program_tasks,
        correct_variants=("correct",),
        aggregation="nanmean",
    ),
    MetricRecord(
        "parseability_rate",
        "code",
        "share of outputs whose code parses",
        selectable=True,
        default=True,
        on=program_tasks,
        correct_variants=("correct",),
    ),
)


# --- model-based beyond-paper metrics (docs/metrics.md, "Semantic clusters and code diversity")


def _cluster_stat(name: str) -> Callable[[dict[str, float]], float]:
    """``nli_matrix`` kind: one value of a set's cluster statistics (``metrics.semantic.cluster_stats``)."""

    def fn(stats: dict[str, float]) -> float:
        return stats[name]

    fn.__qualname__ = fn.__name__ = name
    return fn


_BEYOND_MODELS = (
    MetricRecord(
        "semantic_clusters", "nli_matrix", "number of semantic clusters (bidirectional entailment of whole outputs)",
        _cluster_stat("semantic_clusters"), selectable=True,
    ),
    MetricRecord(
        "semantic_clusters_norm", "nli_matrix", "semantic clusters / K", _cluster_stat("semantic_clusters_norm"),
        selectable=True,
    ),
    MetricRecord(
        "semantic_entropy", "nli_matrix", "entropy (nats) of the semantic-cluster sizes",
        _cluster_stat("semantic_entropy"), selectable=True,
    ),
    MetricRecord(
        "code_sbert", "embeddings", "1 - mean pairwise cosine of code-model embeddings of the extracted code",
        lazy("lm_eval_diversity.metrics.embedding", "sbert_diversity_from_gram"), model_setting="code_model",
        selectable=True, on=code_tasks, correct_variants=("all", "correct"), split=True,
        inputs="embeddings of the extracted code (`code_model`)",
    ),
    MetricRecord(
        "code_vendi", "embeddings", "Vendi score of code-model embeddings of the extracted code",
        lazy("lm_eval_diversity.metrics.embedding", "vendi_from_gram"), model_setting="code_model",
        selectable=True, on=code_tasks, correct_variants=("all", "correct"), split=True,
        inputs="embeddings of the extracted code (`code_model`)",
    ),
)  # fmt: skip


# --- reward-model quality (docs/quality.md, "Reward model"): on every task when ``quality_model`` is set

_reward_stat = lazy("lm_eval_diversity.metrics.reward", "set_statistic")


def _reward(name: str) -> Callable:
    """``rewards`` kind: one statistic of a set's rewards, ratings, acceptable flags and texts."""

    def fn(reward_set) -> float:
        return _reward_stat(name, reward_set)

    fn.__qualname__ = fn.__name__ = name
    return fn


_REWARDS = (
    MetricRecord("reward_mean", "rewards", "mean raw reward of the outputs", _reward("reward_mean"), selectable=True),
    MetricRecord("reward_rating", "rewards", "mean rating 1-10 (deciles of the reference run's rewards)",
                 _reward("reward_rating"), selectable=True),
    MetricRecord("acceptable_rate", "rewards", "share of outputs with reward >= the acceptable threshold",
                 _reward("acceptable_rate"), selectable=True),
    MetricRecord("k_acceptable", "rewards", "number of outputs with reward >= the acceptable threshold",
                 _reward("k_acceptable"), selectable=True),
    MetricRecord("distinct_k", "rewards", "NoveltyBench distinct classes among the K outputs (unigram equivalence)",
                 _reward("distinct_k"), selectable=True),
    MetricRecord("utility_k", "rewards", "NoveltyBench utility: patience-weighted rating of each new class (0-10)",
                 _reward("utility_k"), selectable=True),
    MetricRecord(
        "qvendi", "embeddings", "quality-weighted Vendi: mean(rating / 10) x Vendi",
        lazy("lm_eval_diversity.metrics.reward", "quality_weighted_vendi_from_gram"), selectable=True,
        inputs="embeddings (`sbert_model`) and rewards (`quality_model`)",
    ),
)  # fmt: skip
QUALITY_MODEL_METRICS = tuple(r.name for r in _REWARDS)  # run exactly when ``quality_model`` is set
# the subsets of quality-filtered diversity: the grader's correct outputs, the reward model's acceptable ones
SUBSETS = ("correct", "acceptable")

SPLIT_PARTS = ("loss", "residual", "qc")


def acceptable_variant_records(records: tuple[MetricRecord, ...]) -> tuple[MetricRecord, ...]:
    """``<m>_acceptable``: over the reward-acceptable outputs of prompts with >= 2 of them (mean over those
    prompts), on every task, for every record with a ``correct`` variant and no ``tasks`` limit (docs/quality.md)."""
    return tuple(
        replace(
            r, name=f"{r.name}_acceptable", description=f"{r.name} over the reward-acceptable outputs (>= 2)",
            corpus=False, selectable=False, default=False, corpus_default=False, graded=False, correct_variants=(),
            split=False, requires=r.name, aggregation="nanmean", harness=False,
            inputs=f"{r.inputs or r.kind}, acceptable outputs (`quality_model`)",
        )
        for r in records
        if "correct" in r.correct_variants and r.on is None
    )  # fmt: skip


def correct_variant_records(records: tuple[MetricRecord, ...]) -> tuple[MetricRecord, ...]:
    """``<m>_all`` (over all outputs, mean) and ``<m>_correct`` (over the correct outputs of prompts with >= 2 of
    them, mean over those prompts) of every record with ``correct_variants``; graded tasks only."""
    out = []
    for r in records:
        for variant in r.correct_variants:
            over = "all outputs" if variant == "all" else "the correct outputs (>= 2 correct)"
            out.append(
                replace(
                    r, name=f"{r.name}_{variant}", description=f"{r.name} over {over}", corpus=False,
                    selectable=False, default=False, corpus_default=False, graded=True, correct_variants=(),
                    split=False, requires=r.name, aggregation="mean" if variant == "all" else "nanmean",
                    inputs=f"{r.inputs or r.kind}, {'all' if variant == 'all' else 'correct'} outputs",
                )
            )  # fmt: skip
    return tuple(out)


def split_records(records: tuple[MetricRecord, ...]) -> tuple[MetricRecord, ...]:
    """``loss_<m>``, ``residual_<m>``, ``qc_<m>`` of every record with ``split`` (docs/decomposition.md)."""
    return tuple(
        MetricRecord(
            f"{part}_{r.name}",
            "baseline",
            f"{part} part of the {r.name} QC/residual split against a baseline",
            graded=True,
            higher_is_better=False,
            aggregation="corpus",
            requires=r.name,
            on=r.on,
        )
        for r in records
        if r.split
        for part in SPLIT_PARTS
    )


_COMPUTABLE = MetricRecord(
    "computable",
    "embeddings",
    "share of prompts with >= 2 correct outputs",
    graded=True,
    inputs="verdicts",
)

_ACCEPTABLE_COMPUTABLE = MetricRecord(
    "acceptable_computable", "embeddings", "share of prompts with >= 2 reward-acceptable outputs", harness=False,
    inputs="rewards (`quality_model`)",
)  # fmt: skip

_BUILTIN: tuple[MetricRecord, ...] = (
    *_PRIMARY,
    *_DIAGNOSTICS,
    *_QUALITY,
    *correct_variant_records(_PRIMARY),
    _COMPUTABLE,
    *split_records(_PRIMARY),
    *_BEYOND_FREE,
    *correct_variant_records(_BEYOND_FREE),
    *_BEYOND_MODELS,
    *correct_variant_records(_BEYOND_MODELS),
    *split_records(_BEYOND_MODELS),
    *_REWARDS,
    *acceptable_variant_records(_PRIMARY),
    _ACCEPTABLE_COMPUTABLE,
    *_IFEVAL,  # last: scoring reports a task's own quality records after those of every graded task
)
_REGISTERED: list[MetricRecord] = []


def records() -> tuple[MetricRecord, ...]:
    """Every metric record: the shipped ones in catalogue order, then those added by :func:`register_metric`."""
    return (*_BUILTIN, *_REGISTERED)


def record(name: str) -> MetricRecord:
    """The record of a metric name; ``pass@<k>`` for any k maps to the pass@k family."""
    for r in records():
        if r.name == name:
            return r
    if name.startswith("pass@") and name[5:].isdigit() and int(name[5:]) >= 1:
        return _pass_at_k(int(name[5:]))
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(r.name for r in records())}")


def register_metric(new: MetricRecord) -> MetricRecord:
    """Add a metric to the catalogue (a new selectable metric needs ``selectable=True`` and a kind's ``fn``)."""
    if any(r.name == new.name for r in records()):
        raise ValueError(f"metric {new.name!r} is already in the catalogue")
    if new.selectable and new.fn is None:
        raise ValueError(f"metric {new.name!r}: a selectable metric needs its batched function (fn)")
    _REGISTERED.append(new)
    return new


def unregister_metric(name: str) -> None:
    """Remove a metric added by :func:`register_metric`."""
    _REGISTERED[:] = [r for r in _REGISTERED if r.name != name]


@contextmanager
def registered(new: MetricRecord) -> Iterator[MetricRecord]:
    """:func:`register_metric` for the duration of a block (the catalogue is restored after it)."""
    register_metric(new)
    try:
        yield new
    finally:
        unregister_metric(new.name)


def registered_records() -> tuple[MetricRecord, ...]:
    """The records added by :func:`register_metric`, in order."""
    return tuple(_REGISTERED)


def builtin_records() -> tuple[MetricRecord, ...]:
    """The shipped records, in catalogue order."""
    return _BUILTIN


# --- derived lists ------------------------------------------------------------------------------------------------


def selectable_metrics() -> tuple[str, ...]:
    """Valid values of the ``metrics`` and ``corpus_metrics`` settings."""
    return tuple(r.name for r in records() if r.selectable)


def default_metrics() -> tuple[str, ...]:
    return tuple(r.name for r in records() if r.selectable and r.default)


def corpus_metrics(default_only: bool = False) -> tuple[str, ...]:
    """Metrics with corpus levels (``default_only``: those computed there without ``corpus_metrics``)."""
    return tuple(r.name for r in records() if r.selectable and r.corpus and (r.corpus_default or not default_only))


def metric_names(
    kind: str | None = None, *, graded: bool | None = None, selectable: bool | None = None
) -> tuple[str, ...]:
    """Names of the records of one input kind (all kinds with None), optionally only graded / selectable ones."""
    return tuple(
        r.name
        for r in records()
        if (kind is None or r.kind == kind)
        and (graded is None or r.graded == graded)
        and (selectable is None or r.selectable == selectable)
    )


def acceptable_metrics() -> tuple[str, ...]:
    """Quality-filtered diversity over the reward-acceptable outputs (``<m>_acceptable``), then
    ``acceptable_computable``."""
    subsets = tuple(r.name for r in records() if r.requires and r.name == f"{r.requires}_acceptable")
    return (*subsets, _ACCEPTABLE_COMPUTABLE.name)


def higher_is_better(name: str) -> bool:
    """Direction of a metric (a corpus-level name ``<m>_across_input`` / ``<m>_overall`` follows ``m``)."""
    return record(split_level(name)[0]).higher_is_better


def split_level(name: str) -> tuple[str, str]:
    """``("sbert", "overall")`` for ``sbert_overall``; ``(name, "per_input")`` for a per-input name."""
    for level in CORPUS_LEVELS:
        base = name.removesuffix(f"_{level}")
        if base != name and any(r.name == base and r.corpus for r in records()):
            return base, level
    return name, "per_input"


def models_needed(metrics) -> tuple[str, ...]:
    """The settings fields naming the models the chosen metrics need (``sbert_model``, ``nli_model``), in order."""
    chosen = set(metrics)
    return tuple(dict.fromkeys(r.model_setting for r in records() if r.name in chosen and r.model_setting))


def metrics_using(model_setting: str) -> tuple[str, ...]:
    """Selectable metrics computed with the model named by ``model_setting``."""
    return tuple(r.name for r in records() if r.selectable and r.model_setting == model_setting)


def split_metrics() -> tuple[str, ...]:
    """Metrics with a QC/residual split (``loss_``/``residual_``/``qc_``)."""
    return tuple(r.name for r in records() if r.split)


def quality_metrics() -> tuple[str, ...]:
    """Per-prompt quality of every graded task (``score``): acc, pass@k (protocol k), maj@K, k_correct, ..."""
    return tuple(r.name for r in records() if r.kind == "verdicts" and r.on is None)


def quality_filtered_metrics(task: str | None = None) -> tuple[str, ...]:
    """Quality-filtered diversity: the ``_all``/``_correct`` variants, then ``computable`` (with ``task``, also the
    variants of that task's own metrics, e.g. the AST ones of code tasks)."""
    return tuple(r.name for r in records() if r.graded and r.kind not in ("verdicts", "baseline") and on_task(r, task))


def on_task(r: MetricRecord, task: str | None) -> bool:
    """Whether a record is defined on a task (records without ``on`` are defined on every task; with ``task=None``
    or a task outside the catalogue, only those)."""
    if r.on is None:
        return True
    record = find_task(task)
    return record is not None and r.on(record)


def tasks_of(r: MetricRecord) -> tuple[str, ...] | None:
    """Short names of the catalogue's tasks a record is defined on (None: every task)."""
    return None if r.on is None else tuple(t.name for t in task_records() if r.on(t))


def task_quality_metrics(task: str) -> tuple[str, ...]:
    """The quality metrics of some tasks only that ``task`` has (IFEval's loose and instruction levels)."""
    return tuple(r.name for r in records() if r.kind == "verdicts" and r.on is not None and on_task(r, task))
