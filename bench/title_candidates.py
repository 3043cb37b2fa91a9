"""How many answers to draw, and how hot: the development comparison behind ``candidates=3``.

On development items of PSW-like titles (a seed other than the evaluation's), the first
author's few-shot prompt is answered greedily and then sampled three times at each temperature
(seeds 1-3, as ``Personalizer`` samples). Every answer goes through output control; "best of n"
keeps, among the first n answers, the usable one whose content words the abstract holds best
(``chains.best_grounded``, the rule the package uses), else the fallback headline. Scores are
ROUGE-1 and ROUGE-L F1 against the real titles, with the mean length of the kept titles.
Writes docs/benchmarks/title_candidates.json and .md.

Usage:
    .venv/bin/python bench/title_candidates.py                  # 24 items, seed 1
    .venv/bin/python bench/title_candidates.py --limit 8 --store /tmp/tc-store
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import DATA, ROOT, machine_info, machine_md, md_table, report_head, write_json
from tqdm import tqdm

from langchain_stepback_profile import chains
from langchain_stepback_profile.chains import Personalizer, best_grounded, fallback_output
from langchain_stepback_profile.embeddings import MiniLMEmbeddings
from langchain_stepback_profile.evaluation import get_eval_task, load_items
from langchain_stepback_profile.evaluation.datasets import select
from langchain_stepback_profile.evaluation.methods import MethodContext
from langchain_stepback_profile.evaluation.metrics import rouge_scores
from langchain_stepback_profile.llms import default_chat_model
from langchain_stepback_profile.memory import ProfileMemory
from langchain_stepback_profile.output_control import Controlled
from langchain_stepback_profile.retriever import StepBackProfileRetriever

NAME = "title_candidates"
TEMPERATURES = (0.5, 0.8)
SAMPLES = 3


def _answers(step: Personalizer, item: Any, docs: list, temperature: float) -> list[Controlled]:
    """Greedy then SAMPLES sampled answers at ``temperature``, each through output control."""
    default, chains.SAMPLE_TEMPERATURE = chains.SAMPLE_TEMPERATURE, temperature
    try:
        control = step.run(item.input_text, docs)["control"]
    finally:
        chains.SAMPLE_TEMPERATURE = default
    pairs = zip(control["answers"], control["verdicts"], strict=True)
    return [Controlled(text, verdict) for text, verdict in pairs][: SAMPLES + 1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--store", type=Path, default=Path("/tmp/title-candidates-store"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    machine = machine_info()
    started = time.perf_counter()

    task = get_eval_task("PSW-title")
    items = select(load_items(task, DATA / "PSW_like"), args.limit, args.seed)
    llm = default_chat_model()
    memory = ProfileMemory(args.store, embeddings=MiniLMEmbeddings(), llm=llm, task=task.spec)
    leads = {i.store_ids[0]: i.history[i.user_ids[0]] for i in items}
    memory.add_histories(leads)
    memory.refresh(list(leads), strategy="hybrid", show_progress=True)
    retriever = StepBackProfileRetriever(memory=memory, k=args.k)
    methods = MethodContext(task)  # the prompt task with each item's own instruction

    kept: dict[str, list[str]] = {}
    for item in tqdm(items, desc="items", unit="item"):
        docs = retriever.invoke(item.input_text, user_ids=item.store_ids[:1])
        spec = methods.spec(item)
        step = Personalizer(llm, spec, prompt_layout="few_shot", candidates=SAMPLES + 1)
        for temperature in TEMPERATURES:
            drawn = _answers(step, item, docs, temperature)
            picks = {f"best of {n}, temperature {temperature}": n for n in range(2, SAMPLES + 2)}
            if temperature == TEMPERATURES[0]:  # the first answer is greedy at any temperature
                picks = {"greedy (n = 1)": 1, **picks}
            for label, n in picks.items():
                chosen = best_grounded(drawn[:n], item.input_text)
                kept.setdefault(label, []).append(
                    drawn[chosen].text
                    if chosen is not None
                    else fallback_output(item.input_text, spec, chains.typical_words(docs))
                )
            for s in range(1, SAMPLES + 1):
                label = f"sample {s} alone, temperature {temperature}"
                kept.setdefault(label, []).append(drawn[s].text)
    memory.close()

    golds = [i.gold for i in items]
    rows = []
    for label, texts in kept.items():
        scores = rouge_scores(texts, golds)
        rows.append(
            {
                "selection": label,
                "rouge1": round(statistics.mean(scores["rouge-1"]), 4),
                "rougeL": round(statistics.mean(scores["rouge-L"]), 4),
                "mean_words": round(statistics.mean(len(t.split()) for t in texts), 2),
            }
        )
    payload = {
        **report_head(NAME, argv, machine),
        "items": len(items),
        "seed": args.seed,
        "k": args.k,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "rows": rows,
        "outputs": {
            label: [
                {"id": i.id, "gold": i.gold, "output": t} for i, t in zip(items, texts, strict=True)
            ]
            for label, texts in kept.items()
        },
    }
    write_json(args.out / f"{NAME}.json", payload)
    table = md_table(
        ["selection", "ROUGE-1", "ROUGE-L", "mean words"],
        [
            [r["selection"], f"{r['rouge1']:.3f}", f"{r['rougeL']:.3f}", r["mean_words"]]
            for r in rows
        ],
    )
    (args.out / f"{NAME}.md").write_text(
        f"# Answers to draw: greedy vs best grounded of n\n\n"
        f"`{payload['command']}`: {len(items)} development PSW-like titles (seed {args.seed}, "
        f"first author's few-shot prompt, k = {args.k}), embedded SmolLM2-135M; "
        f"{payload['seconds']} s.\n\n{table}\n\n{machine_md(machine)}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
