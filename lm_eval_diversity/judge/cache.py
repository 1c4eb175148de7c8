"""A persistent cache of judge answers, so that rerunning a judgement costs nothing.

One SQLite file (stdlib, safe across threads and processes). The key is SHA-256 of the judge model, the rendered
messages and the sampling parameters (:func:`cache_key`): the same question to the same judge is asked once. Only
answers the server actually gave are stored; a request that failed (timeout, server error) is not, so a rerun asks
it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/lm_eval_diversity/judge.sqlite`` (``~/.cache`` when the variable is unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "lm_eval_diversity" / "judge.sqlite"


def cache_key(model: str, messages: Sequence[Mapping[str, str]], sampling: Mapping[str, object]) -> str:
    """SHA-256 of (judge model, messages, sampling parameters) in a canonical JSON form."""
    payload = json.dumps(
        {"model": model, "messages": list(messages), "sampling": dict(sampling)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What the judge returned for one request (``content`` is "" when it refused or sent nothing)."""

    content: str
    refusal: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None  # the model name the server reported


class JudgeCache:
    """``get(key)`` / ``put(key, answer)`` over one SQLite file; ``path=None`` keeps nothing (no cache)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._db = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
                self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
                self._db.commit()
            except sqlite3.Error as exc:
                hint = "use --cache_path or --no_cache"
                raise OSError(f"{self.path}: cannot open the judge cache ({exc}); {hint}") from None

    def get(self, key: str) -> Answer | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else Answer(**json.loads(row[0]))

    def contains(self, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` that hold an answer."""
        if self._db is None or not keys:
            return set()
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                found.update(r[0] for r in self._db.execute(f"SELECT key FROM answers WHERE key IN ({marks})", chunk))
        return found

    def put(self, key: str, answer: Answer) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", (key, json.dumps(asdict(answer)))
            )
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
            self._db = None
