"""The metric catalogue: the lists derived from it equal the committed task YAMLs and docs table, and a metric added
through the catalogue alone is scored."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from lm_eval_diversity import TASK_DIR
from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue import views
from lm_eval_diversity.catalogue.metrics import MetricRecord
from lm_eval_diversity.scoring import PromptGroup, score_groups
from lm_eval_diversity.settings import COMMAND_DEFAULTS, DIVERSITY_METRICS, DiversitySettings

REPO = Path(__file__).resolve().parents[2]


class _YamlLoader(yaml.SafeLoader):
    """Reads ``!function a.b.c`` as the string ``a.b.c`` (the catalogue's spelling of a function aggregation)."""


_YamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _yaml(name: str) -> dict:
    return yaml.load((Path(TASK_DIR) / name).read_text(), Loader=_YamlLoader)


@pytest.mark.parametrize(
    "name, graded, task",
    [("_diversity_template.yaml", False, None), ("_verifiable_template.yaml", True, None),
     ("diversity_ifeval.yaml", True, "ifeval")],
)  # fmt: skip
def test_harness_metric_list_equals_the_committed_templates(name, graded, task):
    assert views.harness_metric_list(graded, task) == _yaml(name)["metric_list"]


def test_group_aggregate_metrics_equal_the_committed_groups():
    groups = [p.name for p in Path(TASK_DIR).glob("*.yaml")]
    groups = [g for g in groups if "aggregate_metric_list" in _yaml(g)]
    assert "diversity.yaml" in groups and len(groups) >= 8
    for g in groups:
        listed = [e["metric"] for e in _yaml(g)["aggregate_metric_list"]]
        # the verifiable group also averages its quality metrics, after the common ones
        assert listed[: len(views.group_aggregate_metrics())] == views.group_aggregate_metrics(), g


def test_settings_lists_come_from_the_catalogue():
    lexical = ("compression_ratio", "ngram_diversity", "self_repetition", "homogenization_rougel", "distinct_1",
               "distinct_2", "distinct_3", "distinct_4", "self_bleu")  # fmt: skip
    free = (
        *lexical, "distinct_answers", "distinct_answers_norm", "answer_entropy", "no_answer_rate",
        "distinct_behaviours", "distinct_behaviours_norm", "behaviour_entropy", "unrunnable_rate", "ast_distinct",
        "ast_pairwise", "parseability_rate",
    )  # fmt: skip
    # the paper's four, then the measures that cost no model call, default on
    assert DIVERSITY_METRICS == ("ead", "sbert", "vendi", "nli", *free)
    # homogenization has no corpus levels (every pair of the overall sample)
    corpus_lexical = tuple(m for m in lexical if m != "homogenization_rougel")
    assert DiversitySettings().corpus_metrics == ("ead", "sbert", "vendi", "nli", *corpus_lexical)
    # NLI and lexical corpus levels opt-in
    assert COMMAND_DEFAULTS.corpus_metrics == ("ead", "sbert", "vendi")
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['bogus'\] in metrics; choose from \['ead'"):
        DiversitySettings(metrics=("bogus",))


def test_lookups_for_report_and_compare():
    embeddings = ("sbert", "vendi", "code_sbert", "code_vendi", "qvendi")
    assert catalogue.metric_names("embeddings", selectable=True) == embeddings
    assert catalogue.split_metrics() == ("sbert", "vendi", "code_sbert", "code_vendi")
    assert catalogue.higher_is_better("sbert_overall") is True
    assert catalogue.higher_is_better("dup_rate") is False
    assert catalogue.higher_is_better("qc_vendi") is False
    assert catalogue.record("pass@7").aggregation == "nanmean"
    assert catalogue.models_needed(("ead", "vendi", "nli")) == ("sbert_model", "nli_model")
    assert catalogue.models_needed(("code_vendi", "semantic_entropy")) == ("nli_model", "code_model")
    assert catalogue.quality_filtered_metrics() == ("sbert_all", "sbert_correct", "vendi_correct", "computable")
    assert catalogue.quality_filtered_metrics("diversity_mbpp")[4:] == (
        "ast_distinct_correct", "ast_pairwise_correct", "parseability_rate_correct",
        "code_sbert_all", "code_sbert_correct", "code_vendi_all", "code_vendi_correct",
    )  # fmt: skip
    assert catalogue.higher_is_better("self_bleu_overall") is False
    assert catalogue.higher_is_better("distinct_answers") is True
    assert catalogue.higher_is_better("unrunnable_rate") is False


def test_lexical_directions_are_the_modules():
    from lm_eval_diversity.metrics import lexical

    texts = catalogue.metric_names("texts", selectable=True)  # a new measure of this kind may follow them
    assert texts[: 1 + len(lexical.LEXICAL_MEASURES)] == ("ead", *lexical.LEXICAL_MEASURES)
    assert {m: catalogue.higher_is_better(m) for m in lexical.HIGHER_IS_BETTER} == lexical.HIGHER_IS_BETTER
    with pytest.raises(ValueError, match="lexical_mode must be one of"):
        DiversitySettings(lexical_mode="shaib")


def test_task_metrics_are_listed_only_where_defined():
    def names(graded, task=None):
        return {e["metric"] for e in views.harness_metric_list(graded, task)}

    assert "distinct_1" in names(False) and "self_bleu_overall" in names(False)
    assert "homogenization_rougel_overall" not in names(True, "gsm8k")
    assert {"distinct_answers", "answer_entropy"} <= names(True, "gsm8k") - names(True, "mbpp")
    assert {"distinct_behaviours", "ast_pairwise", "ast_pairwise_correct"} <= names(True, "humaneval") - names(
        True, "gsm8k"
    )
    assert not {"distinct_answers", "ast_distinct"} & names(True)  # not in the verifiable template
    with pytest.raises(KeyError, match="unknown metric 'bogus'"):
        catalogue.record("bogus")


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="unknown input kind 'pixels'"):
        MetricRecord("x", "pixels", "?")
    with pytest.raises(ValueError, match="already in the catalogue"):
        catalogue.register_metric(MetricRecord("sbert", "texts", "?", fn=len, selectable=True))
    with pytest.raises(ValueError, match="needs its batched function"):
        catalogue.register_metric(MetricRecord("x", "texts", "?", selectable=True))


def test_docs_table_is_the_catalogues():
    doc = (REPO / "docs" / "metrics.md").read_text()
    assert views.docs_table() in doc


def mean_length(sets, settings):
    """Toy metric: mean number of characters of the stripped outputs of each set."""
    return [sum(len(t) for t in texts) / len(texts) for texts in sets]


TOY = MetricRecord("toy_mean_length", "texts", "mean characters per stripped output", mean_length, corpus=True,
                   selectable=True)  # fmt: skip


def test_toy_metric_through_the_catalogue_only():
    groups = [
        PromptGroup(doc_id=0, outputs=["ab", "abcd"]),
        PromptGroup(doc_id=1, outputs=["<think>long thought</think>abc", "a", "abcdef"]),
        PromptGroup(doc_id=2, outputs=["xyz"]),  # one output: undefined per prompt
    ]
    with catalogue.registered(TOY):
        settings = DiversitySettings(metrics=("ead", "toy_mean_length"), corpus_metrics=("toy_mean_length",))
        assert "toy_mean_length" in catalogue.selectable_metrics()
        res = score_groups(groups, settings)
    # by hand: prompt 0 (2 + 4) / 2 = 3; prompt 1 (3 + 1 + 6) / 3 = 10/3; prompt 2 undefined
    rows = {r["doc_id"]: r for r in res.per_prompt}
    assert rows[0]["toy_mean_length"] == pytest.approx(3.0)
    assert rows[1]["toy_mean_length"] == pytest.approx(10 / 3)
    assert math.isnan(rows[2]["toy_mean_length"])
    level = res.metrics["toy_mean_length"]
    assert level["per_input_mean"] == pytest.approx((3 + 10 / 3) / 2)
    assert level["per_input_std"] == pytest.approx(abs(3 - 10 / 3) / 2)
    # across-input: the first outputs "ab", "abc", "xyz" (3 prompts < 500: all); overall: all 6 outputs
    assert level["across_input"] == pytest.approx(8 / 3)
    assert level["overall"] == pytest.approx((2 + 4 + 3 + 1 + 6 + 3) / 6)
    assert math.isnan(res.metrics["ead"]["overall"])  # ead runs, but not at the corpus levels here
    # gone after the block: the catalogue is as shipped
    assert "toy_mean_length" not in catalogue.selectable_metrics()
    with pytest.raises(ValueError, match="unknown metric"):
        DiversitySettings(metrics=("toy_mean_length",))
