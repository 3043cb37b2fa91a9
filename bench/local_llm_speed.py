"""Speed of the embedded chat model: LocalChatModel running SmolLM2-135M-Instruct (Q4_1 GGUF)
in process with llama.cpp.

Measured per thread count, each in a fresh process (so load time and memory are clean):

- load: ``LocalChatModel(n_threads=N)`` plus its first use (reads the GGUF, allocates the
  context);
- prefill: prompt tokens per second on a ~500-token prompt, from ``invoke(max_tokens=1)``
  (prompt processing plus one sampled token). Every run begins with a different line so
  llama.cpp's prefix cache cannot skip any of the prompt;
- generation: tokens per second over 128 greedy tokens, from ``stream()``, timed from the
  first chunk to the last (prefill excluded);
- RSS of the process before loading, after loading, and at its peak.

Median of 5 runs each (after one warm-up call). With ``--builds``, each llama.cpp build of
``langchain_stepback_profile/llms/llama_build.py`` (``native``: llama-cpp-python's default
``-march=native``; ``tuned``: this CPU's SIMD extensions without AMX, the set-up's default;
``baseline``: the portable fallback) is built or taken from the set-up's cache, installed into
a folder of its own and measured side by side in one run, thread count by thread count.
Writes docs/benchmarks/local_llm_speed.json and .md.

Usage:
    .venv/bin/python bench/local_llm_speed.py                 # 1 and 2 threads, 5 runs each
    .venv/bin/python bench/local_llm_speed.py --threads 2 --runs 3
    .venv/bin/python bench/local_llm_speed.py --builds native tuned baseline --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
NAME = "local_llm_speed"
PREFILL_TOKENS = 500
GENERATED_TOKENS = 128
PARAGRAPH = (
    "Step-back profiling summarises a user's history into a short profile of interests, "
    "recurring keywords and writing style. The profile is written by a language model from "
    "the user's earlier documents, stored next to a vector index of those documents, and "
    "retrieved together with the most similar history items when the user asks something new. "
)
HEADER = (
    "| build | n_threads | load (s) | prefill tok/s | generation tok/s | RSS before load (MiB) "
    "| RSS loaded (MiB) | RSS peak (MiB) |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
)
STORY = "Write a long story about a cat named Tom who explores a city at night."


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process in MiB (``VmHWM`` for the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    import langchain_core
    import llama_cpp

    return {
        "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "langchain_core": langchain_core.__version__,
    }


def worker(threads: int, runs: int) -> dict[str, Any]:
    """One configuration, measured in this process."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from langchain_stepback_profile.llms import LocalChatModel

    rss_before = rss_mb()
    start = time.perf_counter()
    llm = LocalChatModel(n_threads=threads, max_tokens=GENERATED_TOKENS)
    llm.get_num_tokens("load")  # the first use loads the model
    load_s = time.perf_counter() - start
    rss_loaded = rss_mb()

    body = PARAGRAPH
    while llm.get_num_tokens_from_messages([HumanMessage(body)]) < PREFILL_TOKENS:
        body += PARAGRAPH
    llm.invoke("Hi", max_tokens=4)  # warm-up

    prefill: list[float] = []
    prompt_tokens = 0
    for run in range(runs):
        messages = [SystemMessage(f"Run {run}: answer in one word."), HumanMessage(body)]
        start = time.perf_counter()
        answer = llm.invoke(messages, max_tokens=1)
        elapsed = time.perf_counter() - start
        assert answer.usage_metadata is not None
        prompt_tokens = answer.usage_metadata["input_tokens"]
        prefill.append(prompt_tokens / elapsed)

    generation: list[float] = []
    generated = 0
    for _ in range(runs):
        first = last = 0.0
        chunks = []
        for chunk in llm.stream(STORY, max_tokens=GENERATED_TOKENS):
            last = time.perf_counter()
            first = first or last
            chunks.append(chunk)
        assert chunks[-1].usage_metadata is not None
        generated = chunks[-1].usage_metadata["output_tokens"]
        generation.append((generated - 1) / (last - first))

    import llama_cpp

    return {
        "llama_cpp": str(Path(llama_cpp.__file__).parent),
        "n_threads": threads,
        "load_s": round(load_s, 3),
        "prefill_prompt_tokens": prompt_tokens,
        "prefill_tokens_per_s": round(statistics.median(prefill), 1),
        "prefill_runs": [round(x, 1) for x in prefill],
        "generated_tokens": generated,
        "generation_tokens_per_s": round(statistics.median(generation), 1),
        "generation_runs": [round(x, 1) for x in generation],
        "rss_before_load_mb": round(rss_before, 1),
        "rss_loaded_mb": round(rss_loaded, 1),
        "rss_peak_mb": round(rss_mb("VmHWM"), 1),
    }


def markdown(payload: dict[str, Any]) -> str:
    info = payload["machine"]
    rows = "\n".join(
        f"| {r['build']} | {r['n_threads']} | {r['load_s']:.2f} | {r['prefill_tokens_per_s']:.0f} "
        f"({r['prefill_prompt_tokens']} tok) | {r['generation_tokens_per_s']:.1f} "
        f"({r['generated_tokens']} tok) | {r['rss_before_load_mb']:.0f} | "
        f"{r['rss_loaded_mb']:.0f} | {r['rss_peak_mb']:.0f} |"
        for r in payload["results"]
    )
    load = ", ".join(f"{x:.2f}" for x in payload["loadavg_at_start"])
    return f"""# Local chat model speed

SmolLM2-135M-Instruct (`{payload["model"]}`) run in process by llama.cpp through
`LocalChatModel`, greedy. Medians of {payload["runs"]} runs; each thread count runs in a fresh
process. Prefill is prompt tokens per second of `invoke(max_tokens=1)` on a ~{PREFILL_TOKENS}-token
prompt (prefix cache defeated); generation is tokens per second of `stream()` over
{GENERATED_TOKENS} greedy tokens, timed from the first chunk (prefill excluded).

{HEADER}
{rows}

Reproduce: `{payload["command"]}`

Machine: `nproc` = {info["nproc"]}, {info["cpu_model"]}; {info["platform"]}, Python
{info["python"]}, llama-cpp-python {info["llama_cpp_python"]}, langchain-core
{info["langchain_core"]}. Load average at start: {load} (other jobs share the CPUs; llama.cpp's
threads spin at barriers, so a busy machine slows runs with more threads most).
"""


def build_paths(names: list[str]) -> dict[str, Path]:
    """Each named llama.cpp build installed into a folder of its own (built once, cached)."""
    from langchain_stepback_profile.llms import llama_build

    flags = llama_build.cpu_flags()
    known = {f.name: f for f in llama_build.flavors(flags)}
    known["native"] = llama_build.native_flavor(flags)
    cache = llama_build.default_cache()
    sites: dict[str, Path] = {}
    for name in names:
        flavor = known[name]
        wheel = llama_build.cached_wheel(sys.executable, cache, flavor)
        site = cache / f"site-{flavor.key()}"
        if not (site / "llama_cpp").is_dir():
            pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
            subprocess.run([*pip, str(site), str(wheel)], check=True)
        sites[name] = site
    return sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--builds",
        nargs="+",
        choices=("native", "tuned", "avx2", "baseline"),
        default=None,
        help="llama.cpp builds to compare (default: the one installed in this venv)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.threads[0], args.runs)))
        return

    builds = build_paths(args.builds) if args.builds else {"installed": None}
    loadavg = list(os.getloadavg())
    results = []
    for threads in args.threads:
        for build, site in builds.items():
            print(f"{build}, n_threads={threads}...", file=sys.stderr, flush=True)
            env = dict(os.environ)
            if site is not None:  # this build's llama_cpp first on the path
                env["PYTHONPATH"] = os.pathsep.join(
                    filter(None, [str(site), env.get("PYTHONPATH")])
                )
            command = [sys.executable, __file__, "--worker", "--threads", str(threads)]
            done = subprocess.run(
                [*command, "--runs", str(args.runs)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env=env,
            )
            results.append({"build": build, **json.loads(done.stdout)})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)

    from langchain_stepback_profile.llms import default_model_path

    argv = " ".join(sys.argv[1:])
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f".venv/bin/python bench/{NAME}.py" + (f" {argv}" if argv else ""),
        "model": default_model_path().name,
        "runs": args.runs,
        "loadavg_at_start": [round(x, 2) for x in loadavg],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
        "results": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{NAME}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (OUT / f"{NAME}.md").write_text(markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
