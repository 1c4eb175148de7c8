"""Asking an OpenAI-compatible chat endpoint (a vLLM server, a hosted API) many judge questions at once.

The official ``openai`` client does the HTTP work, including retries with exponential backoff (and the server's
``Retry-After``) on transient failures only: timeouts, lost connections, 408/409/429 and 5xx answers. Any other
error (a 400 for a prompt that is too long, say) fails that one request at once; an authentication error, a
missing model or a refused permission stops the whole judgement, since every request would fail the same way.
Answers go through :class:`~lm_eval_diversity.judge.cache.JudgeCache` first, and at most ``concurrency`` requests
are in flight.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from lm_eval_diversity.judge.cache import Answer, JudgeCache, cache_key

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


class JudgeError(RuntimeError):
    """The judgement cannot go on (bad credentials, unknown model, missing client); the message says what to do."""


@dataclass(frozen=True)
class Outcome:
    """One request's result: the answer (None on failure), whether it came from the cache, the error if any."""

    answer: Answer | None
    cached: bool = False
    error: str | None = None


def _openai():
    try:
        import openai
    except ImportError:
        raise JudgeError(
            "the judge needs the openai client: pip install 'lm-eval-diversity[judge]' (or pip install openai)"
        ) from None
    return openai


class JudgeClient:
    """A chat-completions client for one judge model. The API key is read from ``api_key_env`` (never stored or
    recorded); a server that needs none (a local vLLM) gets a placeholder."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        temperature: float = 0.0,
    ):
        openai = _openai()
        self.model = model
        self.temperature = temperature
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def sampling(self, max_tokens: int) -> dict[str, object]:
        return sampling_params(self.temperature, max_tokens)

    def ask(self, messages: list[dict[str, str]], max_tokens: int) -> Answer:
        """One chat completion (the client retries transient failures itself)."""
        completion = self._client.chat.completions.create(
            model=self.model, messages=messages, **self.sampling(max_tokens)
        )
        if not completion.choices:
            raise ValueError("the server answered with no choices")
        choice = completion.choices[0]
        usage = completion.usage
        return Answer(
            content=choice.message.content or "",
            refusal=getattr(choice.message, "refusal", None),
            finish_reason=choice.finish_reason,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            model=completion.model,
        )

    def is_fatal(self, exc: BaseException) -> bool:
        """Errors every other request would hit too: stop instead of failing them one by one."""
        o = self._openai
        return isinstance(exc, (o.AuthenticationError, o.PermissionDeniedError, o.NotFoundError))

    def describe(self, exc: BaseException) -> str:
        status = getattr(exc, "status_code", None)
        kind = type(exc).__name__
        return f"{kind} (HTTP {status}): {exc}" if status else f"{kind}: {exc}"


def sampling_params(temperature: float, max_tokens: int) -> dict[str, object]:
    """The sampling parameters sent with a request (and part of its cache key)."""
    return {"temperature": temperature, "max_tokens": max_tokens}


def request_keys(model: str, temperature: float, requests: Sequence[tuple[list[dict[str, str]], int]]) -> list[str]:
    """The cache key of each ``(messages, max_tokens)`` request to ``model``."""
    return [cache_key(model, messages, sampling_params(temperature, mt)) for messages, mt in requests]


def ask_all(
    client: JudgeClient,
    cache: JudgeCache,
    requests: Sequence[tuple[list[dict[str, str]], int]],
    *,
    concurrency: int = 8,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Every request's :class:`Outcome`, in order: cached answers first, the rest with at most ``concurrency``
    in flight. A fatal error (:meth:`JudgeClient.is_fatal`) cancels what has not started and raises
    :class:`JudgeError`; answers received until then are cached."""
    keys = request_keys(client.model, client.temperature, requests)
    outcomes: list[Outcome | None] = [None] * len(requests)
    todo = []
    for i, key in enumerate(keys):
        hit = cache.get(key)
        if hit is not None:
            outcomes[i] = Outcome(hit, cached=True)
            if on_done:
                on_done(outcomes[i])
        else:
            todo.append(i)
    stop = threading.Event()
    first_key: dict[str, int] = {}  # identical requests in one run are asked once
    unique = [i for i in todo if first_key.setdefault(keys[i], i) == i]

    def one(i: int) -> None:
        if stop.is_set():
            return
        messages, max_tokens = requests[i]
        try:
            answer = client.ask(messages, max_tokens)
        except Exception as exc:  # noqa: BLE001 - every failure is reported per request or stops the run
            if client.is_fatal(exc):
                stop.set()
                raise JudgeError(f"the judge endpoint refused the request: {client.describe(exc)}") from None
            outcomes[i] = Outcome(None, error=client.describe(exc))
        else:
            cache.put(keys[i], answer)
            outcomes[i] = Outcome(answer)
        if on_done:
            on_done(outcomes[i])

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="judge") as pool:
        futures = [pool.submit(one, i) for i in unique]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                stop.set()
                for g in futures:
                    g.cancel()
                raise f.exception()
    for i in todo:
        if outcomes[i] is None:  # a duplicate of an earlier request of this run
            src = outcomes[first_key[keys[i]]]
            outcomes[i] = Outcome(src.answer, cached=src.answer is not None, error=src.error)
            if on_done:
                on_done(outcomes[i])
    return outcomes  # type: ignore[return-value]
