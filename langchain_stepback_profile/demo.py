"""The demo: real multi-author scientific writing, offline, with the embedded defaults.

Ships ten real papers (title + abstract) of each of three ACL/EMNLP authors, taken from the
PSW-like corpus (ACL Anthology papers, Creative Commons). It ingests them, builds each
author's step-back profile with the embedded local model, and retrieves the profiles and
most similar earlier papers for a new abstract written by two of them, in author order.

Run: ``python -m langchain_stepback_profile.demo [--store PATH]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

from langchain_stepback_profile.chains import Personalizer
from langchain_stepback_profile.memory import ProfileMemory
from langchain_stepback_profile.profile import UserProfile
from langchain_stepback_profile.retriever import StepBackProfileRetriever
from langchain_stepback_profile.tasks import get_task
from langchain_stepback_profile.usage import LLMUsage


def load_sample() -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """(papers by author, the held-out query paper) from the package data."""
    data = resources.files("langchain_stepback_profile") / "data"
    papers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (data / "sample_papers.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        papers[row.pop("user")].append(row)
    query = json.loads((data / "sample_query.json").read_text(encoding="utf-8"))
    return dict(papers), query


def _profile_lines(profile: UserProfile) -> str:
    lines = profile.render().splitlines()
    unsupported = profile.unsupported()
    if unsupported:
        lines.append("Not supported by the history: " + "; ".join(unsupported))
    return "\n".join(f"  {line}" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=".stepback-profile/demo", help="store folder")
    args = parser.parse_args(argv)

    from langchain_stepback_profile.llms import default_chat_model

    started = time.perf_counter()
    papers, query = load_sample()
    llm = default_chat_model()
    task = get_task("scholarly_title")
    memory = ProfileMemory(Path(args.store), llm=llm, task=task, profile_strategy="hybrid")
    counts = memory.add_histories(papers, show_progress=True)
    print(f"History: {sum(map(len, counts.values()))} papers of {len(counts)} authors")

    report = memory.refresh(show_progress=True)
    print(f"Profiles: {report}")
    for author in papers:
        profile = memory.get_profile(author)
        assert profile is not None  # refresh() wrote a profile for every author with history
        print(
            f"\n== {author} (profile v{profile.version}, {profile.strategy}; "
            f"{profile.faithfulness:.0%} of its claims found in the history) =="
        )
        print(_profile_lines(profile))

    authors = query["authors"][:2]
    print(f"\nNew abstract by {' and '.join(authors)} ({query['venue']} {query['year']}):")
    print(f"  {query['abstract'][:300]}...")
    retriever = StepBackProfileRetriever(memory=memory, k=2)
    for doc in retriever.invoke(query["abstract"], user_ids=authors):
        meta = doc.metadata
        if meta["kind"] == "history":
            print(
                f"  similar earlier paper of {meta['user_id']}: {meta.get('output')} "
                f"({meta['score']:.2f})"
            )

    print(f"\nReal title:                          {query['title']}")
    rows: tuple[tuple[str, Personalizer, list[str]], ...] = (
        ("non-personalized", Personalizer(llm, task, prompt_layout="plain"), []),
        (f"first author ({authors[0]})", Personalizer(llm, task), authors[:1]),
        ("both authors, in order", Personalizer(llm, task), authors),
    )
    for label, step, users in rows:
        usage = LLMUsage()
        docs = retriever.invoke(query["abstract"], user_ids=users) if users else []
        result = step.run(query["abstract"], docs, {"callbacks": [usage]})
        note = " (fallback)" if result["control"]["fallback"] else ""
        calls = f"{usage.calls} LLM call{'s' if usage.calls != 1 else ''}"
        print(f"Title, {label + ',':<28} {calls}: {result['output']}{note}")

    print(
        f"\nDone in {time.perf_counter() - started:.1f} s. What the embedded SmolLM2-135M can "
        "show: the profiles' topics, keywords and style are measured from the history and every "
        "claim is checked against it; the model writes only the summary sentences, and titles "
        "learn the authors' format and length from their own earlier papers shown as examples. "
        "What it cannot: it does not reason about the authors, its summaries are loose, and a "
        "personalized title is not always closer to the real one. For full step-back profiles "
        "use a served model: stepback-profile --llm openai:MODEL --base-url URL ..."
    )
    memory.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
