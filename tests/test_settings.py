"""The settings object: choices from the field types, help from field metadata, every channel derived from the fields
(flags, ``--metadata`` keys, environment variables, the recorded dict), the run's own settings included."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from lm_eval_diversity import settings as S
from lm_eval_diversity.command import run_flags
from lm_eval_diversity.modes import SAMPLING_PRESETS, SamplingPreset, choices
from lm_eval_diversity.settings import DiversitySettings, resolve_settings

LITERAL_FIELDS = [f for f in S.settings_fields() if S.field_choices(f)]


def test_the_mode_fields_take_their_choices_from_their_literal_types():
    assert S.field_choices("math_mode") == ("math", "compat")
    assert S.field_choices("sampling") == ("paper", "hf_patch")  # Optional[Literal]: None is the default
    assert S.field_choices("seed") == ()  # not a Literal
    assert set(LITERAL_FIELDS) >= {"dtype", "math_mode", "ifeval_mode", "code_mode", "stop_sequences", "lexical_mode"}
    assert set(SAMPLING_PRESETS) == set(choices(SamplingPreset))


@pytest.mark.parametrize("field", LITERAL_FIELDS)
def test_a_value_outside_the_choices_is_refused_naming_the_field_and_the_choices(field):
    allowed = S.field_choices(field)
    for value in allowed:
        assert getattr(DiversitySettings(**{field: value}), field) == value
    with pytest.raises(ValueError, match=rf"^{field} must be one of \[.*'{allowed[-1]}'\], got 'bogus'$"):
        DiversitySettings(**{field: "bogus"})


def test_bounds_and_the_rules_no_type_states():
    with pytest.raises(ValueError, match="vocab_size must be >= 2, got 1"):
        DiversitySettings(vocab_size=1)
    with pytest.raises(ValueError, match="max_docs must be >= 1"):
        DiversitySettings(max_docs=0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        DiversitySettings(seed=-1)
    with pytest.raises(ValueError, match="code_timeout_s must be a positive, finite number"):
        DiversitySettings(code_timeout_s=float("inf"))


def test_help_comes_from_the_field_metadata():
    for field in (*S.settings_fields(), *S.run_fields()):
        meta = next(f for f in dataclasses.fields(DiversitySettings) if f.name == field).metadata
        assert S.field_help(field).startswith(meta["help"]) and S.env_name(field) in S.field_help(field)
    assert "(default: 64;" in S.field_help("batch_size")
    assert "default" not in S.field_help("data_dir").removeprefix(S.field_doc("data_dir"))  # no default to show


def test_the_runs_own_settings_are_settings_like_the_others():
    run = S.run_fields()
    assert run == ("repeats", "no_cot", "data_dir", "all_metrics", "max_docs")
    flags = run_flags()
    for field in run:
        assert flags[f"--{field}"][0] == field  # a flag of `run` and the --metadata key of the same name
        assert S.metadata_keys()[field] == field
        assert field not in S.score_fields()  # `score` reads logged samples: no generation, no prompt set
        assert field not in DiversitySettings().to_dict()  # lm-eval records them in the task config
    env = {"LM_EVAL_DIVERSITY_MAX_DOCS": "3", "LM_EVAL_DIVERSITY_REPEATS": "8", "LM_EVAL_DIVERSITY_ALL_METRICS": "yes"}
    settings, sources = resolve_settings({"data_dir": "/d"}, environ=env)
    assert (settings.max_docs, settings.repeats, settings.all_metrics, settings.data_dir) == (3, 8, True, "/d")
    assert sources["max_docs"] == "LM_EVAL_DIVERSITY_MAX_DOCS" and sources["data_dir"].endswith("--metadata data_dir")
    with pytest.raises(ValueError, match="LM_EVAL_DIVERSITY_MAX_DOCS='zero': expected an integer"):
        resolve_settings({}, environ={"LM_EVAL_DIVERSITY_MAX_DOCS": "zero"})
    with pytest.raises(ValueError, match=r"LM_EVAL_DIVERSITY_MAX_DOCS=0: max_docs must be >= 1, got 0"):
        resolve_settings({}, environ={"LM_EVAL_DIVERSITY_MAX_DOCS": "0"})


@pytest.mark.parametrize(
    "given, expected",
    [("true", True), (True, True), ("false", False), ("0", False), ("<think>\n\n</think>", "<think>\n\n</think>")],
)
def test_no_cot_is_a_flag_or_the_pre_fill_itself(given, expected):
    assert resolve_settings({"no_cot": given}, environ={})[0].no_cot == expected


def test_dtype_is_validated_recorded_and_read_from_the_environment():
    assert DiversitySettings().dtype == "float32"
    assert DiversitySettings(dtype="bfloat16").to_dict()["dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="dtype must be one of"):
        DiversitySettings(dtype="fp8")
    assert resolve_settings({}, environ={"LM_EVAL_DIVERSITY_DTYPE": "float16"})[0].dtype == "float16"


def test_settings_round_trip_through_the_recorded_dict_in_a_fresh_process(monkeypatch):
    monkeypatch.setattr(S, "_FIELD_TYPES", {})  # as in a process that has parsed no setting yet
    original = DiversitySettings(metrics=("ead",), corpus_metrics=(), dtype="bfloat16", seed=7)
    assert DiversitySettings.from_dict(original.to_dict()) == original


def test_every_field_is_annotated_with_a_type_the_parser_knows():
    hints = typing.get_type_hints(DiversitySettings)
    for field in (*S.settings_fields(), *S.run_fields()):
        value = getattr(DiversitySettings(), field)
        text = ",".join(value) if isinstance(value, tuple) else "" if value is None else str(value)
        assert S._coerce(field, text, field) == value or value is None, (field, hints[field])
