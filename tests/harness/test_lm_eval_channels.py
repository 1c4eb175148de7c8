"""Settings through lm-eval's ``--metadata``, the metrics a run reports, local data the lm-eval way, refusals."""

from __future__ import annotations

import json
import math

import lm_eval
import pytest
from lm_eval.tasks import get_task_dict

from lm_eval_diversity.command import SettingsError, check_metadata_keys, merge_metadata
from lm_eval_diversity.lm_eval_cli import task_manager
from lm_eval_diversity.loader import DEMO_DATA_DIR
from lm_eval_diversity.settings import DiversitySettings, resolve_settings
from tests.harness.fakes import REASONS, GoldLM, gsm8k_gold

K = 3


# --- precedence: --metadata, then LM_EVAL_DIVERSITY_*, then defaults ------------------------------------------------


def test_metadata_beats_environment_beats_default():
    env = {"LM_EVAL_DIVERSITY_VOCAB_SIZE": "100", "LM_EVAL_DIVERSITY_SEED": "7"}
    settings, sources = resolve_settings({"vocab_size": 50, "metrics": "ead,sbert"}, environ=env)
    assert settings.vocab_size == 50 and sources["vocab_size"] == "--vocab_size / --metadata vocab_size"
    assert settings.seed == 7 and sources["seed"] == "LM_EVAL_DIVERSITY_SEED"
    assert settings.batch_size == DiversitySettings().batch_size and "batch_size" not in sources
    assert settings.metrics == ("ead", "sbert")


def test_bare_model_argument_names_are_not_read_as_settings():
    # lm-eval merges --model_args (device=..., batch_size=...) into the task metadata: those belong to the model
    settings, _ = resolve_settings({"device": "cuda:3", "batch_size": 2, "metric_device": "cpu"}, environ={})
    assert settings.device == "cpu" and settings.batch_size == DiversitySettings().batch_size


def test_two_spellings_of_one_setting_must_agree():
    with pytest.raises(ValueError, match="diversity_metrics.*metrics|metrics.*diversity_metrics"):
        resolve_settings({"metrics": "ead", "diversity_metrics": "sbert"}, environ={})


def test_bad_value_names_the_key_used():
    with pytest.raises(ValueError, match="--metadata vocab_size='many'"):
        resolve_settings({"vocab_size": "many"}, environ={})
    with pytest.raises(ValueError, match="LM_EVAL_DIVERSITY_NLI_MAX_LENGTH"):
        resolve_settings({}, environ={"LM_EVAL_DIVERSITY_NLI_MAX_LENGTH": "x"})


def test_unknown_metadata_key_is_an_error_naming_it():
    with pytest.raises(SettingsError, match="'metric'.*did you mean 'metrics'"):
        check_metadata_keys({"metric": "ead"})
    with pytest.raises(SettingsError, match="'diversity_metricz'"):
        check_metadata_keys({"diversity_metricz": "ead"})
    # model args pass, also near names such as max_length (nli_max_length is ours)
    check_metadata_keys({"pretrained": "gpt2", "dtype": "float32", "max_length": 2048, "version": 1.0})
    with pytest.raises(SettingsError, match="'pretrained'"):
        check_metadata_keys({"pretrained": "gpt2"}, exact=True)  # the --metadata JSON itself: every key known


def test_run_flags_merge_into_metadata_and_conflicts_are_refused():
    assert merge_metadata({"repeats": 2}, {"vocab_size": "9"}) == {"repeats": 2, "vocab_size": "9"}
    assert merge_metadata({"vocab_size": 9}, {"vocab_size": "9"}) == {"vocab_size": 9}  # the same value twice
    with pytest.raises(SettingsError, match="disagree"):
        merge_metadata({"vocab_size": 3}, {"vocab_size": "9"})
    with pytest.raises(SettingsError, match="--vocab_size='x'"):
        merge_metadata({}, {"vocab_size": "x"})


def _task(metadata: dict, name: str = "diversity_gsm8k"):
    tm = task_manager(include_defaults=False, metadata=metadata)
    return get_task_dict([name], tm)[name]


def test_task_records_settings_from_metadata_over_environment(harness_env, monkeypatch):
    monkeypatch.setenv("LM_EVAL_DIVERSITY_VOCAB_SIZE", "1000")
    monkeypatch.setenv("LM_EVAL_DIVERSITY_SEED", "11")
    task = _task({"repeats": K, "vocab_size": 500, "diversity_metrics": "ead,vendi"})
    recorded = task.config.metadata["diversity_settings"]
    assert recorded["vocab_size"] == 500 and recorded["seed"] == 11 and recorded["metrics"] == ["ead", "vendi"]
    assert task.config.repeats == K
    # the filter scores with the same settings
    (step,) = [s for s in task.config.filter_list[0]["filter"] if s["function"] == "diversity_metrics"]
    assert step["settings"]["vocab_size"] == 500


def test_unknown_key_in_a_plain_lm_eval_run_is_refused(harness_env):
    with pytest.raises(SettingsError, match="'sbert_modle'"):
        _task({"sbert_modle": "x"})


def test_model_error_names_the_metadata_key(harness_env):
    from lm_eval_diversity.models import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="--metadata sbert_model"):
        lm_eval.simple_evaluate(
            model=GoldLM(), tasks=["diversity_gsm8k"], limit=1, bootstrap_iters=0,
            task_manager=task_manager(include_defaults=False, metadata={"repeats": 2, "sbert_model": "no-org/none"}),
        )  # fmt: skip


# --- the metrics a run reports ---------------------------------------------------------------------------------------


def _run(metadata: dict, **kwargs) -> dict:
    tm = task_manager(include_defaults=False, metadata={"repeats": K, **metadata})
    return lm_eval.simple_evaluate(
        model=GoldLM(n_reasons=2), tasks=["diversity_gsm8k"], task_manager=tm, limit=2, bootstrap_iters=0,
        log_samples=True, **kwargs,
    )  # fmt: skip


def _metrics(result: dict) -> set[str]:
    return {k.split(",")[0] for k in result["results"]["diversity_gsm8k"] if "," in k and "_stderr" not in k}


@pytest.fixture(scope="module")
def ead_sbert_run(harness_env) -> dict:
    return _run({"diversity_metrics": "ead,sbert"})


def test_default_table_has_only_defined_metrics_and_all_metrics_restores_them(ead_sbert_run, harness_env):
    res = ead_sbert_run
    shown = _metrics(res)
    # K=3: pass@1 and pass@3 (the run's own K); sbert corpus levels; no vendi/nli, no split without a baseline
    assert shown == {
        "ead", "sbert", "ead_across_input", "ead_overall", "sbert_across_input", "sbert_overall",
        "dup_rate", "empty_rate", "unclosed_think_rate", "acc", "pass@1", "pass@3", "maj@K", "k_correct",
        "sbert_all", "sbert_correct", "computable",
    }  # fmt: skip
    # GoldLM answers every sample correctly: pass@3 = 1 - C(0, 3)/C(3, 3) = 1
    assert res["results"]["diversity_gsm8k"]["pass@3,div"] == 1.0
    full = _metrics(_run({"diversity_metrics": "ead,sbert", "all_metrics": True}))
    assert {"nli", "vendi_overall", "pass@16", "qc_sbert", "vendi_correct"} <= full
    assert res["configs"]["diversity_gsm8k"]["metadata"]["metrics_shown"] == "defined"


def test_logged_sample_values_are_json_values(ead_sbert_run):
    for sample in ead_sbert_run["samples"]["diversity_gsm8k"]:
        line = json.loads(json.dumps(sample, default=str, allow_nan=False))  # strict JSON: no NaN literal
        assert isinstance(line["ead"], float) and isinstance(line["acc"], float)
        # GoldLM answers correctly: every doc has >= 2 correct outputs, so diversity among them is defined
        assert isinstance(line["sbert_correct"], float) and not math.isnan(line["sbert_correct"])
        # filtered_resps: per response, the stripped text, its extracted answer and correctness, as JSON
        records = [json.loads(r) for r in line["filtered_resps"][0]]
        gold = gsm8k_gold(sample["doc"])
        assert len(records) == K
        assert records[0] == {"response": f"{REASONS[0]}\n#### {gold}", "answer": gold, "correct": True}
        assert records[1]["response"].startswith(REASONS[1])


def test_num_fewshot_is_refused(harness_env):
    with pytest.raises(ValueError, match="num_fewshot 2 is not supported"):
        _run({}, num_fewshot=2)


# --- local data the lm-eval way ------------------------------------------------------------------------------------


def test_include_yaml_overriding_dataset_path_uses_that_data(harness_env, tmp_path, monkeypatch):
    from lm_eval_diversity import TASK_DIR

    monkeypatch.delenv("LM_EVAL_DIVERSITY_DATA_DIR")
    rows = [json.loads(line) for line in (DEMO_DATA_DIR / "gsm8k" / "test.jsonl").read_text().splitlines()[:2]]
    rows[0]["question"] = "A unique local question about 17 apples?"
    data = tmp_path / "my_gsm8k.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "my_gsm8k.yaml").write_text(
        f"include: {TASK_DIR / 'diversity_gsm8k.yaml'}\ntask: my_gsm8k\ndataset_path: json\n"
        f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
    )
    tm = task_manager(include_path=str(tmp_path), include_defaults=False, metadata={"repeats": 2})
    task = get_task_dict(["my_gsm8k"], tm)["my_gsm8k"]
    questions = [d["question"] for d in task.test_docs()]
    assert sorted(questions) == sorted(r["question"] for r in rows)


def test_data_dir_metadata_key_reaches_the_loader(harness_env, tmp_path, monkeypatch):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_DATA_DIR")
    (tmp_path / "gsm8k").mkdir()
    src = (DEMO_DATA_DIR / "gsm8k" / "test.jsonl").read_text().splitlines()[:3]
    (tmp_path / "gsm8k" / "test.jsonl").write_text("\n".join(src) + "\n")
    task = _task({"repeats": 2, "data_dir": str(tmp_path)})
    assert len(list(task.test_docs())) == 3
    assert task.config.metadata["data_dir"] == str(tmp_path)


def test_shown_metrics_by_hand():
    from lm_eval_diversity.harness import COMMAND_DEFAULTS, shown_metrics

    names = ["ead", "nli", "ead_overall", "nli_overall", "pass@1", "pass@5", "qc_sbert", "vendi_correct", "acc"]
    entries = [{"metric": n} for n in names]

    def shown(task, repeats, **changes):
        settings = COMMAND_DEFAULTS.replace(**changes)
        return [e["metric"] for e in shown_metrics(entries, settings, repeats, task)]

    # defaults: nli per-input runs, its corpus level does not; K=4 -> pass@1 only; no baseline -> no split
    assert shown("diversity_gsm8k", 4) == ["ead", "nli", "ead_overall", "pass@1", "vendi_correct", "acc"]
    assert shown("diversity_gsm8k", 5, baseline="b", metrics=("ead", "sbert")) == [
        "ead", "ead_overall", "pass@1", "pass@5", "qc_sbert", "acc",
    ]  # fmt: skip
    # K=1: per-prompt diversity is undefined by construction; corpus levels are not
    assert shown("diversity_gsm8k", 1) == ["ead_overall", "pass@1", "acc"]
    # on a task without grading only the graded-only rows go (its own metric_list has no acc anyway)
    assert shown("diversity_xsum", 4) == ["ead", "nli", "ead_overall", "acc"]
