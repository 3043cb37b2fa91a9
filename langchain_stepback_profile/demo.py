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

from langchain_stepback_profile.chains import create_personalized_chain
from langchain_stepback_profile.memory import ProfileMemory
from langchain_stepback_profile.retriever import StepBackProfileRetriever
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=".stepback-profile/demo", help="store folder")
    args = parser.parse_args(argv)

    from langchain_stepback_profile.llms import default_chat_model

    started = time.perf_counter()
    papers, query = load_sample()
    llm = default_chat_model()
    memory = ProfileMemory(Path(args.store), llm=llm, task="scholarly_title")
    counts = memory.add_histories(papers, show_progress=True)
    print(f"History: {sum(map(len, counts.values()))} papers of {len(counts)} authors")

    report = memory.refresh(show_progress=True)
    print(f"Profiles: {report}")
    for author in papers:
        print(f"\n== {author} (profile v{memory.get_profile(author).version}) ==")
        print(memory.get_profile(author).render())

    authors = query["authors"][:2]
    print(f"\nNew abstract by {' and '.join(authors)} ({query['venue']} {query['year']}):")
    print(f"  {query['abstract'][:300]}...")
    retriever = StepBackProfileRetriever(memory=memory, k=2)
    for doc in retriever.invoke(query["abstract"], user_ids=authors):
        meta = doc.metadata
        if meta["kind"] == "history":
            print(f"  retrieved for {meta['user_id']}: {meta.get('output')} ({meta['score']:.2f})")

    chain = create_personalized_chain(llm, retriever, task="scholarly_title")
    print(f"\nReal title: {query['title']}")
    for label, users in (("first author", authors[:1]), ("both authors, in order", authors)):
        usage = LLMUsage()
        title = chain.invoke(
            query["abstract"], config={"configurable": {"user_ids": users}, "callbacks": [usage]}
        )
        first_line = next((line for line in title.splitlines() if line.strip()), "")
        print(f"Title ({label}, {usage.calls} LLM call): {first_line.strip()}")
    print(
        f"\nDone in {time.perf_counter() - started:.1f} s. The embedded SmolLM2-135M is tiny: its "
        "profiles are vague and its titles often copy a retrieved title. For real profiles use a "
        "served model: stepback-profile --llm openai:MODEL --base-url URL ..."
    )
    memory.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
