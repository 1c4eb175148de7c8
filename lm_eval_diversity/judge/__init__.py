"""LLM judges over logged samples: the paper's three protocols (docs/quality.md, "LLM judges").

:mod:`.protocols` holds the prompts, parsers and per-prompt values (pure); :mod:`.client` and :mod:`.cache` ask an
OpenAI-compatible endpoint; :mod:`.run` plans, estimates and scores a run; :mod:`.cli` is ``lm-eval-diversity judge``.
"""
