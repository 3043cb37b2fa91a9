"""A tiny OpenAI-compatible server with a fixed latency per call, for the build benchmarks and
tests (standard library only; not part of the library).

``POST /v1/chat/completions`` sleeps ``--latency-ms`` and answers a valid profile (as a tool
call when the request offers tools, else as JSON text); ``POST /v1/embeddings`` returns
deterministic unit vectors of ``--dim`` (a hash of each text); ``GET /v1/models`` lists one
model. Every chat call is logged as one JSON line in ``--log``: the users named by the
``[[user:ID]]`` tags of the prompt, the ``X-Worker-Pid`` header and the time. With
``--hang-user ID`` the first call for that user is logged as ``"hang"`` and answered only after
``--hang-seconds`` (a worker to kill mid-build). With ``--hold-after N --release FILE`` every
call after the first ``N`` waits until ``FILE`` exists (builds in flight, held at will).

Run: ``python bench/_chat_server.py --port 0 --latency-ms 200 --log calls.jsonl``; it prints
``READY <port>`` on stdout once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

USER_TAG = re.compile(r"\[\[user:([^\]]+)\]\]")


def tag(user_id: str) -> str:
    """The marker an item's text carries so that the server knows whose prompt it is."""
    return f"[[user:{user_id}]]"


def vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values += [v / 2**31 for v in struct.unpack("<8i", digest)]
        counter += 1
    values = values[:dim]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [v / norm for v in values]


def draft(users: list[str]) -> dict[str, Any]:
    who = users[0] if users else "the user"
    return {
        "interests": [f"the work of {who}"],
        "keywords": [who],
        "style": {
            "tone": "plain",
            "length": "one short line",
            "structure": "a single clause",
            "vocabulary": "everyday words",
        },
        "summary": f"{who} writes short texts.",
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, options: argparse.Namespace) -> None:
        super().__init__(("127.0.0.1", options.port), _Handler)
        self.options = options
        self.log_lock = threading.Lock()
        self.hung = False
        self.answered = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up
            super().handle_error(request, client_address)

    def log_call(self, **record: Any) -> None:
        if not self.options.log:
            return
        with self.log_lock, open(self.options.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({**record, "t": time.time()}) + "\n")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/embeddings"):
            texts = request.get("input")
            texts = [texts] if isinstance(texts, str) else list(texts or [])
            dim = self.server.options.dim
            data = [
                {"object": "embedding", "index": n, "embedding": vector(str(t), dim)}
                for n, t in enumerate(texts)
            ]
            self._send({"object": "list", "data": data, "model": "stub", "usage": _usage()})
            return
        prompt = json.dumps(request.get("messages", []))
        users = list(dict.fromkeys(USER_TAG.findall(prompt)))
        pid = self.headers.get("X-Worker-Pid")
        options = self.server.options
        if options.hang_user and options.hang_user in users and not self.server.hung:
            self.server.hung = True
            self.server.log_call(event="hang", users=users, pid=pid)
            time.sleep(options.hang_seconds)
        time.sleep(options.latency_ms / 1000)
        with self.server.log_lock:
            self.server.answered += 1
            held = options.hold_after is not None and self.server.answered > options.hold_after
        while held and not Path(options.release).exists():
            time.sleep(0.05)
        self.server.log_call(event="call", users=users, pid=pid)
        answer = json.dumps(draft(users))
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        tools = request.get("tools") or []
        if tools:
            name = tools[0].get("function", {}).get("name", "answer")
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": name, "arguments": answer},
                    }
                ],
            }
        self._send(
            {
                "id": "stub-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", "stub"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if tools else "stop",
                    }
                ],
                "usage": _usage(),
            }
        )


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


@contextlib.contextmanager
def running(*options: str, timeout: float = 30.0) -> Iterator[str]:
    """This server in a subprocess with ``options``; yields its base URL (``.../v1``). Waits
    at most ``timeout`` seconds for it to listen, and always stops it."""
    command = [sys.executable, str(Path(__file__).resolve()), "--port", "0", *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(server.stdout.readline() if server.stdout else ""),
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        if not ready or not ready[0].startswith("READY "):
            raise RuntimeError(f"the chat server did not start within {timeout:g} s: {ready}")
        yield f"http://127.0.0.1:{int(ready[0].split()[1])}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The server's call records."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--log", default=None)
    parser.add_argument("--hang-user", default=None)
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument("--hold-after", type=int, default=None)
    parser.add_argument("--release", default=None)
    options = parser.parse_args(argv)
    server = _Server(options)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
