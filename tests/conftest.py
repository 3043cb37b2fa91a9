"""Shared fixtures: one real MiniLM embedder per test session, fresh stores per test, data paths."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory

from .postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
NOT_RUN = "(not run by the tests)"


def python_blocks(text: str) -> list[str]:
    """The ``python`` code blocks of a docs page, in order, without those whose first line
    says ``(not run by the tests)``."""
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    return [b for b in blocks if NOT_RUN not in b.splitlines()[0]]


@pytest.fixture(scope="session")
def embeddings() -> MiniLMEmbeddings:
    """The real default embedder, loaded once."""
    return MiniLMEmbeddings()


@pytest.fixture
def memory(tmp_path: Path, embeddings: MiniLMEmbeddings) -> Iterator[ProfileMemory]:
    """An empty store in a temporary folder, with real embeddings, FAISS and SQLite."""
    with ProfileMemory(tmp_path / "store", embeddings=embeddings) as mem:
        yield mem


@pytest.fixture(scope="session")
def lamp5_questions() -> list[dict]:
    """The LaMP-5-like queries from ../shared/data (each with the user's earlier papers)."""
    path = DATA / "LaMP_5_like" / "questions.json"
    if not path.exists():
        pytest.fail(f"evaluation data missing: {path} (../shared/data must sit beside the project)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def openai_server() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with the embedded GGUF.

    Started for the tests that need it and always stopped; yields the base URL (``.../v1``).
    """
    import subprocess
    import sys
    import tempfile

    from langchain_stepback_profile.cpu import default_threads
    from langchain_stepback_profile.llms import default_model_path

    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--n_threads", str(default_threads()),
    ]  # fmt: skip
    # a log file, not a pipe: llama.cpp's log would fill a pipe and stall the server
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_until_up(server, log, f"http://127.0.0.1:{port}/v1")
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_up(server, log, base_url: str, timeout: float = 120) -> str:
    """Poll the server's model list until it answers (bounded); fail with its log if it dies."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read().decode()[-1500:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return base_url
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer on 127.0.0.1 within {timeout} s")
            time.sleep(0.5)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL 16 + pgvector server (``pgserver``) for the session: a unix
    socket in a temporary folder, no TCP port; stopped and deleted at the end. The folder is
    not under pytest's own temporary root, which other pytest sessions make private to root
    while the server (run as its own system user when the tests run as root) needs to reach it."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="stepback-pg-"))
    server = PostgresServer(folder / "pgdata")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database of its own for this test, dropped after it."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)
