"""A local OpenAI-compatible chat endpoint that answers with scripted verdicts (standard library only).

``ScriptedJudge(decide)`` serves ``POST /v1/chat/completions``: ``decide(body, attempt)`` gets the request body and
how many times this exact body was received before (0 for the first time) and returns a :class:`Reply`: an answer,
a refusal, an HTTP error, or a delay longer than the client's timeout. Every request body is kept in ``received``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    refusal: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedJudge:
    def __init__(self, decide: Callable[[dict, int], Reply]):
        self.decide = decide
        self.received: list[dict] = []
        self._attempts: Counter = Counter()
        self._lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = json.dumps(body, sort_keys=True)
                with judge._lock:
                    attempt = judge._attempts[key]
                    judge._attempts[key] += 1
                    judge.received.append(body)
                reply = judge.decide(body, attempt)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    payload = {"error": {"message": f"scripted {reply.status}", "type": "scripted", "code": None}}
                else:
                    message = {"role": "assistant", "content": reply.content or None, "refusal": reply.refusal}
                    payload = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {
                            "prompt_tokens": sum(len(m["content"]) for m in body["messages"]) // 4,
                            "completion_tokens": len(reply.content) // 4,
                            "total_tokens": 0,
                        },
                    }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ScriptedJudge:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
