"""Agent fixtures: the memory with two users' histories and profiles."""

from __future__ import annotations

import pytest

from langchain_stepback_profile import ProfileMemory
from tests.agents_tests.data import HISTORIES, PROFILES


@pytest.fixture
def people(memory: ProfileMemory) -> ProfileMemory:
    """The memory with alice's and bob's histories and hand-written profiles."""
    memory.add_histories(HISTORIES, show_progress=False)
    for user_id, draft in PROFILES.items():
        memory.set_profile(user_id, draft)
    return memory
