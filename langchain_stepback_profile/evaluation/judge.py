"""A pairwise LLM judge over an evaluation run, as the paper's PSW evaluation uses one.

For each item the judge sees the task, the input, the gold written by the authors, the
authors' profiles and two methods' outputs, and answers ``A``, ``B`` or ``T`` (a tie). Every
pair is asked in both orders: a method wins an item only when the judge prefers it in both,
so a judge that always picks the first (or the second) position scores a tie, never a win.
The report gives each method's win rate with a bootstrap interval, how often the judge chose
a position rather than an output, and how often its verdict agrees with ROUGE-1's.

Verdicts are as good as the judge: the embedded 135M model shows the plumbing, real verdicts
need a capable model (any LangChain chat model, e.g. ``ChatOpenAI`` against a served model).

Example:
    >>> parse_verdict("B. Candidate B keeps the method's name."), parse_verdict("tie")
    ('B', 'T')
    >>> item_verdict("A", "B"), item_verdict("A", "A")  # both orders agree / a position
    ('a', 'tie')
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from tqdm.auto import tqdm

from langchain_stepback_profile.distill import model_id
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evaluation.datasets import EvalItem, load_items, select
from langchain_stepback_profile.evaluation.metrics import bootstrap_ci, rouge_scores
from langchain_stepback_profile.llms import with_max_tokens

Letter = Literal["A", "B", "T", "?"]
Verdict = Literal["a", "b", "tie"]

JUDGE_JSON = "judge.json"
JUDGE_MD = "judge.md"
MAX_INPUT_CHARS = 1500
"""How much of a long input (an abstract) the judge is shown."""

_SYSTEM = (
    "You compare two candidate outputs of a writing task done for a group of authors. You "
    "judge which candidate is closer to the reference the authors wrote, in content and in "
    "the way these authors write. You answer with one letter: A, B, or T for a tie."
)
_LEADING = re.compile(r"^\W*([ABTabt])\b")
_CAPITAL = re.compile(r"\b([ABT])\b")
_TIE = re.compile(r"\btie\b", re.IGNORECASE)


def parse_verdict(text: str) -> Letter:
    """The judge's letter: a leading ``A``/``B``/``T`` (any case), else the first standalone
    capital ``A``, ``B`` or ``T`` (not the article "a"), else ``T`` for the word "tie";
    ``?`` when the answer holds none."""
    match = _LEADING.match(text) or _CAPITAL.search(text)
    if match is not None:
        return match.group(1).upper()  # type: ignore[return-value]
    return "T" if _TIE.search(text) else "?"


def item_verdict(first: Letter, second: Letter) -> Verdict:
    """The item's verdict from both orders (``first``: method a shown as A; ``second``: a
    shown as B): a method wins only when preferred in both."""
    if first == "A" and second == "B":
        return "a"
    if first == "B" and second == "A":
        return "b"
    return "tie"


def judge_messages(
    item: EvalItem, instruction: str, shown_a: str, shown_b: str, profiles: Sequence[str]
) -> list[BaseMessage]:
    """One question to the judge: the candidates ``shown_a`` and ``shown_b`` for ``item``."""
    authors = "\n\n".join(
        f"Author {n} profile:\n{text}" for n, text in enumerate(profiles, 1) if text.strip()
    )
    return [
        SystemMessage(_SYSTEM),
        HumanMessage(
            f"Task: {instruction}\nInput: {item.input_text[:MAX_INPUT_CHARS]}\n\n"
            f"Reference written by the authors: {item.gold}\n\n"
            f"{authors or 'No author profiles.'}\n\n"
            f"Candidate A: {shown_a}\nCandidate B: {shown_b}\n\n"
            "Which candidate is closer to the reference in content and closer to how these "
            "authors write? Answer with one letter: A, B or T."
        ),
    ]


@dataclass
class JudgeReport:
    """Win rates of two methods by a judge, both orders asked (see the module docstring)."""

    task: str
    methods: tuple[str, str]
    judge: str
    n_items: int
    wins: dict[str, int]
    win_rate: dict[str, float]
    """Method a's share of items won, ties counting half, with its bootstrap interval."""
    first_position_share: float
    """Of the decisive answers, the share that chose the candidate shown first (0.5: no
    position bias; 1.0: the judge always picks the first)."""
    consistent_share: float
    """The share of items where both orders gave the same decision (a win or a tie)."""
    invalid_answers: int
    rouge_agreement: dict[str, float]
    """How often the judge's item verdict equals ROUGE-1's (a, b or tie), over all items
    and over the items both call decisive."""
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        a, b = self.methods
        rate = self.win_rate
        rows = [
            f"# Judge: {a} vs {b} ({self.task})",
            "",
            f"Judge `{self.judge}`, {self.n_items} items, each asked in both orders "
            f"({2 * self.n_items} calls).",
            "",
            "| | value |",
            "| --- | --- |",
            f"| {a} wins / ties / {b} wins | {self.wins['a']} / {self.wins['tie']} / "
            f"{self.wins['b']} |",
            f"| {a} win rate (ties count half), 95% interval | {rate['value']:.3f} "
            f"[{rate['low']:.3f}, {rate['high']:.3f}] |",
            f"| first-position share of decisive answers | {self.first_position_share:.3f} |",
            f"| items where both orders agree | {self.consistent_share:.3f} |",
            f"| unparseable answers | {self.invalid_answers} |",
            f"| agreement with ROUGE-1 (all items) | {self.rouge_agreement['all']:.3f} |",
            f"| agreement with ROUGE-1 (both decisive, n={int(self.rouge_agreement['n_decisive'])})"
            f" | {self.rouge_agreement['decisive']:.3f} |",
            "",
            "A first-position share far from 0.5 means the judge picks a position more than an "
            "output; asking both orders turns such answers into ties. Real verdicts need a "
            "capable judge model.",
        ]
        return "\n".join(rows) + "\n"


def _rouge_verdict(score_a: float, score_b: float) -> Verdict:
    if abs(score_a - score_b) <= 1e-9:
        return "tie"
    return "a" if score_a > score_b else "b"


def judge_outputs(
    items: Sequence[EvalItem],
    outputs: Mapping[str, Mapping[str, str]],
    methods: tuple[str, str],
    judge: BaseChatModel,
    *,
    task: str,
    instruction: str,
    profiles: Mapping[str, Sequence[str]] | None = None,
    max_concurrency: int = 4,
    seed: int = 0,
    show_progress: bool = True,
) -> JudgeReport:
    """Judge ``methods[0]`` against ``methods[1]`` on ``items``.

    ``outputs[method][item_id]`` is each method's output; ``profiles[item_id]`` the rendered
    profiles of the item's authors, in author order.
    """
    a, b = methods
    if a == b:
        raise InvalidArgumentError(f"the judge compares two different methods, got {a!r} twice")
    for method in methods:
        if method not in outputs:
            raise InvalidArgumentError(
                f"no outputs of method {method!r}; the run has {sorted(outputs)}"
            )
    items = [i for i in items if i.id in outputs[a] and i.id in outputs[b]]
    if not items:
        raise InvalidArgumentError(f"no item has outputs of both {a!r} and {b!r}")
    shown = profiles or {}
    questions = []
    for item in items:
        first, second = outputs[a][item.id], outputs[b][item.id]
        authors = shown.get(item.id, ())
        questions.append(judge_messages(item, instruction, first, second, authors))
        questions.append(judge_messages(item, instruction, second, first, authors))
    model = with_max_tokens(judge, 8)
    answers: list[Any] = []
    bar = tqdm(total=len(questions), desc="judge", unit="call", disable=not show_progress)
    for start in range(0, len(questions), max_concurrency):
        batch = questions[start : start + max_concurrency]
        answers += model.batch(
            batch, config={"max_concurrency": max_concurrency}, return_exceptions=True
        )
        bar.update(len(batch))
    bar.close()
    letters: list[Letter] = [
        "?" if isinstance(answer, BaseException) else parse_verdict(str(answer.content))
        for answer in answers
    ]
    rouge_a = rouge_scores([outputs[a][i.id] for i in items], [i.gold for i in items])["rouge-1"]
    rouge_b = rouge_scores([outputs[b][i.id] for i in items], [i.gold for i in items])["rouge-1"]
    judged = [item_verdict(letters[2 * n], letters[2 * n + 1]) for n in range(len(items))]
    by_rouge = [_rouge_verdict(x, y) for x, y in zip(rouge_a, rouge_b, strict=True)]
    decisive = [x for x in letters if x in ("A", "B")]
    scores = [{"a": 1.0, "tie": 0.5, "b": 0.0}[v] for v in judged]
    value, low, high = bootstrap_ci(scores, seed=seed)
    both = [(j, r) for j, r in zip(judged, by_rouge, strict=True) if "tie" not in (j, r)]
    pairs = list(zip(letters[::2], letters[1::2], strict=True))
    consistent = sum(pair in (("A", "B"), ("B", "A"), ("T", "T")) for pair in pairs)
    return JudgeReport(
        task=task,
        methods=(a, b),
        judge=model_id(judge),
        n_items=len(items),
        wins={k: judged.count(k) for k in ("a", "tie", "b")},
        win_rate={"value": value, "low": low, "high": high},
        first_position_share=(round(decisive.count("A") / len(decisive), 3) if decisive else 0.5),
        consistent_share=round(consistent / len(items), 3),
        invalid_answers=letters.count("?"),
        rouge_agreement={
            "all": round(
                sum(j == r for j, r in zip(judged, by_rouge, strict=True)) / len(items), 3
            ),
            "decisive": round(sum(j == r for j, r in both) / len(both), 3) if both else 0.0,
            "n_decisive": float(len(both)),
        },
        verdicts=[
            {"item_id": item.id, "answers": list(pair), "verdict": j, "rouge": r}
            for item, pair, j, r in zip(items, pairs, judged, by_rouge, strict=True)
        ],
    )


def judge_run(
    out_dir: str | Path,
    judge: BaseChatModel,
    methods: Sequence[str] | None = None,
    *,
    max_concurrency: int = 4,
    show_progress: bool = True,
) -> JudgeReport:
    """Judge two methods of the evaluation run in ``out_dir`` (what ``run_eval`` wrote):
    ``methods`` (default: the run's first two), with the authors' profiles from the run's
    store when it has one. Writes ``judge.json`` and ``judge.md`` there."""
    from langchain_stepback_profile.evaluation.runner import RESULTS, RUN_CONFIG
    from langchain_stepback_profile.evaluation.tasks import get_eval_task

    out = Path(out_dir)
    try:
        config = json.loads((out / RUN_CONFIG).read_text())
        lines = (out / RESULTS).read_text().splitlines()
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{out} holds no evaluation run (no {RUN_CONFIG} and {RESULTS}); run the "
            "evaluation first (stepback-profile eval ... --out DIR)"
        ) from None
    chosen = tuple(methods or config["methods"][:2])
    if len(chosen) != 2:
        raise InvalidArgumentError(f"the judge compares exactly two methods, got {list(chosen)}")
    outputs: dict[str, dict[str, str]] = {}
    for line in lines:
        if line.strip():
            record = json.loads(line)
            if "error" not in record:
                outputs.setdefault(record["method"], {})[record["item_id"]] = record["output"]
    task = get_eval_task(config["task"])
    items = select(load_items(task, config["data"]), config.get("limit"), config["seed"])
    report = judge_outputs(
        items,
        outputs,
        (chosen[0], chosen[1]),
        judge,
        task=task.name,
        instruction=task.spec.instruction,
        profiles=_run_profiles(out / "store", items),
        max_concurrency=max_concurrency,
        seed=config["seed"],
        show_progress=show_progress,
    )
    (out / JUDGE_JSON).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / JUDGE_MD).write_text(report.markdown())
    return report


def _run_profiles(store: Path, items: Sequence[EvalItem]) -> dict[str, list[str]]:
    """Each item's authors' profiles as the run stored them, in author order (none when the
    run kept no store)."""
    if not (store / "store.sqlite3").exists():
        return {}
    from langchain_stepback_profile.store import SQLiteProfileStore

    stored = SQLiteProfileStore(store / "store.sqlite3")
    try:
        shown: dict[str, list[str]] = {}
        for item in items:
            profiles = [stored.get_profile(user) for user in item.store_ids]
            shown[item.id] = [p.render(supported_only=True) if p else "" for p in profiles]
        return shown
    finally:
        stored.close()
