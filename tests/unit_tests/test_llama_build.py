"""The llama.cpp set-up: per-CPU flags without AMX, verified builds, portable fallback, cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from langchain_stepback_profile.llms.llama_build import (
    LLAMA_CPP_PYTHON,
    Flavor,
    cpu_flags,
    ensure_verified,
    flavors,
    run_check,
)

XEON = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 sse4_2 avx avx2 fma f16c bmi2 "
    "avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16 avx_vnni "
    "amx_tile amx_int8 amx_bf16\n"
)
EPYC = "processor\t: 0\nflags\t\t: fpu sse2 sse4_2 avx avx2 fma f16c bmi2 sha_ni\n"
# Dies with SIGILL when the tuned build is checked, passes for the baseline one.
TRAPS_WHEN_TUNED = [
    sys.executable,
    "-c",
    "import os, signal\n"
    "if os.environ['STEPBACK_LLAMA_FLAVOR'] == 'tuned': os.kill(os.getpid(), signal.SIGILL)\n"
    "print('ok')",
]


def option(flavor: Flavor, name: str) -> str:
    (value,) = (a.split("=")[1] for a in flavor.cmake_args if a.startswith(f"-D{name}="))
    return value


def test_tuned_build_uses_the_cpu_features_but_never_amx() -> None:
    tuned, avx2, baseline = flavors(cpu_flags(XEON), "x86_64")
    assert (tuned.name, avx2.name, baseline.name) == ("tuned", "avx2", "baseline")
    assert option(avx2, "GGML_AVX2") == "ON" and option(avx2, "GGML_AVX512") == "OFF"
    assert option(tuned, "GGML_NATIVE") == "OFF"
    for name in ("GGML_AVX2", "GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"):
        assert option(tuned, name) == "ON"
    for name in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert option(tuned, name) == "OFF"
        assert option(baseline, name) == "OFF"
    assert option(baseline, "GGML_AVX") == "OFF"


def test_a_wheel_is_only_reused_on_a_cpu_with_the_same_features() -> None:
    xeon_tuned, xeon_avx2, xeon_base = flavors(cpu_flags(XEON), "x86_64")
    epyc_tuned, epyc_base = flavors(cpu_flags(EPYC), "x86_64")  # avx2 is its tuned build
    assert xeon_avx2.cmake_args == epyc_tuned.cmake_args
    assert option(epyc_tuned, "GGML_AVX512") == "OFF"
    assert option(epyc_tuned, "GGML_AVX2") == "ON"
    assert xeon_tuned.key() != epyc_tuned.key()
    assert xeon_base.key() == epyc_base.key()  # the baseline runs on both
    assert xeon_tuned.key().startswith(f"{LLAMA_CPP_PYTHON}-tuned-")


def test_non_x86_machines_build_ggml_defaults_once() -> None:
    assert [f.name for f in flavors(frozenset({"asimd"}), "aarch64")] == ["baseline"]


@pytest.mark.parametrize("through_shell", [False, True])
def test_a_check_that_dies_with_sigill_is_reported(through_shell: bool) -> None:
    command = TRAPS_WHEN_TUNED
    if through_shell:  # a shell reports the child's signal as exit code 128 + 4
        command = ["sh", "-c", '"$0" "$@"; exit $?', *TRAPS_WHEN_TUNED]
    result = run_check(command, Flavor("tuned", ()))
    assert not result.ok
    assert "SIGILL" in result.reason
    assert run_check(command, Flavor("baseline", ())).ok


class FakeBuilder:
    """Writes an empty wheel file per build and records builds and installs."""

    def __init__(self) -> None:
        self.built: list[str] = []
        self.installed: list[Path] = []

    def build(self, python: str, flavor: Flavor, out: Path) -> Path:
        self.built.append(flavor.name)
        wheel = out / f"llama_cpp_python-{LLAMA_CPP_PYTHON}-cp311-cp311-linux_x86_64.whl"
        wheel.write_bytes(b"")
        return wheel

    def install(self, python: str, wheel: Path) -> None:
        self.installed.append(wheel)


def test_a_build_that_traps_falls_back_to_the_portable_one(tmp_path: Path) -> None:
    candidates = flavors(cpu_flags(EPYC), "x86_64")
    fake, said = FakeBuilder(), []
    chosen = ensure_verified(
        sys.executable, tmp_path, candidates, TRAPS_WHEN_TUNED, fake.build, fake.install,
        said.append,
    )  # fmt: skip
    assert chosen.name == "baseline"
    assert fake.built == ["tuned", "baseline"]
    text = "\n".join(said)
    assert "tuned build died with SIGILL" in text
    assert "rebuilding portably" in text
    assert "using the portable baseline build" in text
    assert fake.installed[-1].parent == tmp_path / candidates[1].key()

    # A second set-up builds nothing: the tuned build is known to trap on this CPU and the
    # verified baseline wheel is cached; the baseline is installed and checked again.
    again, said = FakeBuilder(), []
    chosen = ensure_verified(
        sys.executable, tmp_path, candidates, TRAPS_WHEN_TUNED, again.build, again.install,
        said.append,
    )  # fmt: skip
    assert (chosen.name, again.built) == ("baseline", [])
    assert again.installed == [fake.installed[-1]]
    assert any("skipped" in line and "SIGILL" in line for line in said)


def test_a_build_that_passes_is_used_without_building_the_baseline(tmp_path: Path) -> None:
    fake = FakeBuilder()
    passes = [sys.executable, "-c", "print('fine')"]
    candidates = flavors(cpu_flags(EPYC), "x86_64")
    chosen = ensure_verified(
        sys.executable, tmp_path, candidates, passes, fake.build, fake.install, lambda _: None
    )
    assert (chosen.name, fake.built) == ("tuned", ["tuned"])


def test_no_build_passing_is_an_error_that_says_so(tmp_path: Path) -> None:
    always_traps = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    fake = FakeBuilder()
    with pytest.raises(SystemExit, match=r"no build passed the test generation.*baseline: died"):
        ensure_verified(
            sys.executable, tmp_path, flavors(cpu_flags(EPYC), "x86_64"), always_traps,
            fake.build, fake.install, lambda _: None,
        )  # fmt: skip
    assert fake.built == ["tuned", "baseline"]


def test_a_check_that_errors_stops_without_a_pointless_rebuild(tmp_path: Path) -> None:
    fails = [sys.executable, "-c", "import no_such_module_here"]
    fake = FakeBuilder()
    candidates = flavors(cpu_flags(EPYC), "x86_64")
    with pytest.raises(SystemExit, match=r"exited with 1.*No module named"):
        ensure_verified(
            sys.executable, tmp_path, candidates, fails, fake.build, fake.install, lambda _: None
        )
    assert fake.built == ["tuned"]
    assert list((tmp_path / candidates[0].key()).glob("*.whl"))  # kept for the next set-up


def test_on_an_avx512_cpu_the_avx2_build_comes_before_the_baseline(tmp_path: Path) -> None:
    fake, said = FakeBuilder(), []
    chosen = ensure_verified(
        sys.executable, tmp_path, flavors(cpu_flags(XEON), "x86_64"), TRAPS_WHEN_TUNED,
        fake.build, fake.install, said.append,
    )  # fmt: skip
    assert (chosen.name, fake.built) == ("avx2", ["tuned", "avx2"])
    assert "using the portable avx2 build" in "\n".join(said)
