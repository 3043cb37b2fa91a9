"""The session every command shares: the options, the store, and the models they name."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr
from rich.console import Console
from rich.text import Text

from langchain_stepback_profile.cli.parser import DEFAULT_STORE, DEFAULT_TASK, PROG, ModelSpec
from langchain_stepback_profile.embeddings import MiniLMEmbeddings
from langchain_stepback_profile.errors import InvalidArgumentError, StoreError, UnknownUserError
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.memory import ProfileMemory, did_you_mean
from langchain_stepback_profile.store import mask_url


def _from_provider(spec: ModelSpec, kind: str) -> Any:
    """A model of any LangChain provider through ``init_chat_model`` / ``init_embeddings``;
    a missing package or an unknown provider is an error that names the fix."""
    require_extra("agents", "langchain", feature=f"--{kind} {spec}")
    init: Callable[[str], Any]
    if kind == "llm":
        from langchain.chat_models import init_chat_model

        init = init_chat_model
    else:
        from langchain.embeddings import init_embeddings

        init = init_embeddings
    try:
        return init(str(spec))
    except ImportError as err:
        raise InvalidArgumentError(f"--{kind} {spec}: {err}") from None
    except ValueError as err:
        first = str(err).strip().splitlines()[0]
        raise InvalidArgumentError(
            f"--{kind} {spec}: {first} (use provider:model with a LangChain provider)"
        ) from None


class Session:
    """The options every command shares; the store and the models are opened on demand."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.store: Path | str = getattr(args, "store", DEFAULT_STORE)
        self.where = mask_url(self.store) if isinstance(self.store, str) else str(self.store)
        """The store for messages (a URL without its password)."""
        self.task: str | None = getattr(args, "task", None)
        self.llm_spec: ModelSpec = getattr(args, "llm", ModelSpec("local"))
        self.embeddings_spec: ModelSpec = getattr(args, "embeddings", ModelSpec("minilm"))
        self.base_url: str | None = getattr(args, "base_url", None)
        self.json: bool = getattr(args, "json", False)
        self.out = out
        self.console = Console(file=out, soft_wrap=True, highlight=False)
        self._memory: ProfileMemory | None = None

    def memory(self, *, create: bool = False, record_task: bool = False) -> ProfileMemory:
        """The store; only ``ingest`` (``create=True``) may make a new one. With
        ``record_task`` the store remembers ``--task`` for later commands."""
        if self._memory is None:
            folder = self.store if isinstance(self.store, Path) else None
            if not create and folder and not (folder.is_dir() and any(folder.iterdir())):
                raise StoreError(
                    f"no store at {self.where}; create one with: {PROG} ingest FILE "
                    f"--store {self.where}"
                )
            self._memory = ProfileMemory(
                self.store, embeddings=self.embeddings(), task=self.task if record_task else None
            )
        return self._memory

    def known_users(self, memory: ProfileMemory, users: Sequence[str] | None) -> list[str]:
        """``users`` (all users when None), checked to exist, in the order given."""
        stored = memory.users()
        if not stored:
            raise StoreError(
                f"the store at {self.where} holds no users; add histories first: "
                f"{PROG} ingest FILE --store {self.where}"
            )
        if users is None:
            return stored
        for user in users:
            if user not in stored:
                known = ", ".join(repr(u) for u in stored[:3])
                more = f" and {len(stored) - 3} more" if len(stored) > 3 else ""
                raise UnknownUserError(
                    f"unknown user {user!r}: the store at {self.where} has no history for them; "
                    f"{did_you_mean(user, stored)}(it knows {known}{more}; see `{PROG} users`); "
                    f"add their history with `{PROG} ingest`"
                )
        return list(dict.fromkeys(users))

    def task_name(self, memory: ProfileMemory) -> str:
        """``--task``, else the task the store remembers, else the default."""
        if self.task is not None:
            return self.task
        return memory.task if isinstance(memory.task, str) else DEFAULT_TASK

    def llm(self) -> BaseChatModel:
        """The chat model of ``--llm`` (loaded only by the commands that generate)."""
        return self.chat_model(self.llm_spec, "--llm")

    def chat_model(self, spec: ModelSpec, option: str) -> BaseChatModel:
        """The chat model of a model option's value (``--llm``, ``--judge``)."""
        if spec.provider == "local":
            require_extra(
                "local",
                feature=f"{option} local (the embedded model)",
                alternative=f"choose another model: {option} openai:MODEL (--base-url URL for a "
                f"served one) or {option} PROVIDER:MODEL",
            )
            from langchain_stepback_profile.llms import default_chat_model

            return default_chat_model()
        if spec.provider != "openai":
            return _from_provider(spec, "llm")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=spec.model, base_url=self.base_url, api_key=self._api_key(option))

    def embeddings(self) -> Embeddings:
        """The embedding model of ``--embeddings`` (MiniLM loads its weights on first use)."""
        if self.embeddings_spec.provider == "minilm":
            require_extra(
                "local",
                feature="--embeddings minilm (the default)",
                alternative="choose other embeddings: --embeddings openai:MODEL or "
                "--embeddings PROVIDER:MODEL (the same for every command on a store)",
            )
            return MiniLMEmbeddings()
        if self.embeddings_spec.provider != "openai":
            return _from_provider(self.embeddings_spec, "embeddings")
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=self.embeddings_spec.model,
            base_url=self.base_url,
            api_key=self._api_key("--embeddings"),
            # compatible servers take text, not the tiktoken ids OpenAI's own API accepts
            check_embedding_ctx_length=self.base_url is None,
        )

    def _api_key(self, option: str) -> SecretStr:
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            return SecretStr(key)
        if self.base_url:
            return SecretStr("not-needed")
        raise InvalidArgumentError(
            f"{option} openai:... needs an API key: set OPENAI_API_KEY, or pass --base-url URL "
            "of an OpenAI-compatible server"
        )

    def emit(self, data: dict[str, Any]) -> None:
        """Write the command's result as one JSON object on stdout."""
        self.out.write(json.dumps(data, ensure_ascii=False) + "\n")
        self.out.flush()

    def say(self, data: dict[str, Any], text: str) -> None:
        """The command's result: ``data`` as JSON with ``--json``, else one line of text."""
        if self.json:
            self.emit(data)
        else:
            self.console.print(Text(text))

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None
