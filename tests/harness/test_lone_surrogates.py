"""Responses with lone surrogates reach the diversity filter after generation: replaced and counted, never a crash."""

from __future__ import annotations

import json
import logging

from lm_eval_diversity.harness import DiversityMetricsFilter
from lm_eval_diversity.responses import replace_lone_surrogates
from lm_eval_diversity.settings import DiversitySettings


def test_lone_surrogates_are_replaced_and_counted():
    fixed, n = replace_lone_surrogates([["a\ud800b", "ok"], ["\udfff", "c\ud83d\ude00"]])
    # a high and a low surrogate in sequence (two code points in a Python str) are the UTF-16 form of one
    # character: they become that character, not two replacement marks
    assert fixed == [["a\ufffdb", "ok"], ["\ufffd", "c\U0001f600"]]
    assert n == 3
    assert replace_lone_surrogates([["plain", "😀"]]) == ([["plain", "😀"]], 0)


def test_the_filter_scores_such_responses_and_says_how_many(caplog, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a scoring failure would save the responses under the working directory
    settings = DiversitySettings(metrics=("ead",), corpus_metrics=("ead",)).to_dict()
    flt = DiversityMetricsFilter(task="diversity_xsum", k=2, settings=settings)
    doc = {"document": "d", "summary": "s", "id": "0", "split_index": 0}
    with caplog.at_level(logging.WARNING):
        (payload,) = flt.apply([["one \ud800 two", "one two"]], [doc])
    assert "1 response(s) held lone surrogates" in caplog.text
    records = [json.loads(r) for r in payload]
    assert records[0]["response"] == "one \ufffd two"
    # EAD of {"one \ufffd two", "one two"} is defined (not NaN): the texts were scored
    assert payload.values["ead"] == payload.values["ead"]
