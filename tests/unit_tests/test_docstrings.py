"""Every docstring example (``>>>``) of the package runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import langchain_stepback_profile
import llamaindex_integration

PACKAGES = (langchain_stepback_profile, llamaindex_integration)


def modules() -> list[str]:
    names = [package.__name__ for package in PACKAGES]
    for package in PACKAGES:
        names += [
            info.name
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
        ]
    return sorted(n for n in set(names) if not n.endswith(".__main__"))  # runs when imported


@pytest.mark.parametrize("name", modules())
def test_docstring_examples_run(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_the_examples_are_there() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(
        len(test.examples)
        for name in modules()
        for test in finder.find(importlib.import_module(name))
    )
    assert examples >= 100, examples
