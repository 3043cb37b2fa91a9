"""Text tools before and after: claim-support stemming, sentence splitting, bootstrap
intervals and malformed JSON answers, each on fixtures the change was not tuned to.

1. Claim support (``evidence.claim_support``): five-letter prefixes (before) against
   Snowball stems (after). Two fixtures on real LaMP-5-like histories (title + abstract):
   a hand-written one (10 users picked at random, seed 7: claims about each user paraphrased
   from their own titles, and invented claims, either look-alikes that share a five-letter
   prefix with the user's words but not their meaning, or plausible NLP topics the user never
   wrote about; no invented claim shares a word with the history), and a natural one: every
   query's real next title (a claim the history should mostly support) against another
   user's next title (a claim it should not). A claim counts as supported when its share is
   at least ``profile.SUPPORTED`` (what the package uses for interests and keywords).
2. Sentences (``output_control.sentences``): the regex ``(?<=[.!?])\\s+`` (before) against
   pysbd (after), on 35 real abstracts (seed 0: 25 holding "e.g.", "i.e.", "et al.",
   decimals, URLs or "vs.", 10 others) whose boundaries were labelled by hand, and on 31
   hand-written profile-style texts (abbreviations, decimals, "et al.", URLs, acronyms).
   Errors are false splits plus missed boundaries.
3. Intervals (``evaluation.metrics``): the hand-written percentile bootstrap (before) against
   scipy's BCa bootstrap (after; scipy's percentile shown too), by coverage of the true mean
   when n items are drawn from real per-item ROUGE-1 scores and paired differences of
   earlier evaluation runs (docs/benchmarks/eval), and what a 3-item report prints.
4. JSON answers (``distill.parse_draft``): how many of the 22 malformed answers of
   tests/unit_tests/malformed_answers.json give a usable profile without a repair call, with
   langchain_core's ``parse_json_markdown`` alone, with the strict JSON scan alone, and with
   the package's scan + json-repair.

Writes docs/benchmarks/text_tools.json and .md.

Usage:
    .venv/bin/python bench/text_tools.py            # full run (~2 min on 2 cores)
    .venv/bin/python bench/text_tools.py --quick    # smoke run (fewer queries and draws)
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _benchlib import DATA, LAMP5, ROOT, machine_info, machine_md, md_table, report_head, write_json

from langchain_stepback_profile import distill
from langchain_stepback_profile.errors import FewItemsWarning
from langchain_stepback_profile.evaluation import metrics
from langchain_stepback_profile.evaluation.report import _signed
from langchain_stepback_profile.evidence import _WORD, STOPWORDS, claim_support, content_stems
from langchain_stepback_profile.history import HistoryItem, to_history_item
from langchain_stepback_profile.output_control import _sentences, sentences
from langchain_stepback_profile.profile import SUPPORTED, ProfileDraft

NAME = "text_tools"
EVAL_RUNS = ROOT / "docs" / "benchmarks" / "eval"
MALFORMED = ROOT / "tests" / "unit_tests" / "malformed_answers.json"


# =========================================================================== before
def prefix_stems(text: str) -> set[str]:
    """The previous ``content_stems``: content words cut to five letters."""
    return {w.lower()[:5] for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 2}


def regex_sentences(text: str) -> list[str]:
    """The previous ``sentences``."""
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+", text) if part.strip()]


def hand_percentile(values: np.ndarray, seed: int, confidence: float = 0.95) -> tuple[float, float]:
    """The previous ``bootstrap_ci`` interval: percentiles of 1000 resampled means."""
    idx = np.random.default_rng(seed).integers(0, values.size, size=(1000, values.size))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values[idx].mean(axis=1), [tail, 1.0 - tail])
    return float(low), float(high)


# =========================================================================== 1. claims
CLAIMS: dict[str, dict[str, list[str]]] = {
    "Jackie Chi": {
        "true": [
            "summarizing text automatically",
            "generating indicative tweets",
            "resolving verb phrase ellipsis",
            "predicting rare entities",
            "learning entity embeddings",
            "reading comprehension with world knowledge",
            "extractive summarizers",
            "discriminative ellipsis resolvers",
        ],
        "lookalike": [
            "predicate logic",
            "image compression",
            "general relativity",
            "extraterrestrial signals",
        ],
        "plausible": ["speech synthesis", "morphological segmentation"],
    },
    "Daniel Preot¸iucpreot¸iuc-Pietro": {
        "true": [
            "perceived user traits",
            "predicting occupational classes from tweets",
            "age and gender biases",
            "stylistic variation across income groups",
            "analysing Twitter users",
            "perceptions of user age",
            "occupation prediction on Twitter",
        ],
        "lookalike": ["perceptron training", "analytic philosophy", "occupancy grid mapping"],
        "plausible": ["coreference resolution", "speech synthesis"],
    },
    "Kam-Fai Wong": {
        "true": [
            "detecting rumors on microblogs",
            "summarization of repost trees",
            "task-completion dialogue policies",
            "extracting topics from microblog conversations",
            "community emotions",
            "rumour propagation on microblogs",
            "detecting microblog events",
        ],
        "lookalike": ["communist party history", "propaganda techniques"],
        "plausible": ["speech recognition", "named entity linking"],
    },
    "Richard Socher": {
        "true": [
            "question answering with neural networks",
            "global word vectors",
            "multi-task learning for NLP",
            "tree-structured LSTMs",
            "semantic representation learning",
            "factoid questions over paragraphs",
            "jointly trained many-task networks",
        ],
        "lookalike": ["globalization of trade", "factorial designs"],
        "plausible": ["morphological analysis", "coreference resolution"],
    },
    "Bill Byrne": {
        "true": [
            "neural translation ensembles",
            "decoding toolkits for NMT",
            "annotating song lyrics",
            "syntax-guided translation",
            "weighted transducers",
            "shrinking translation ensembles",
            "syntactic guidance for neural MT",
        ],
        "lookalike": ["shrinkage estimators", "prototypical categories"],
        "plausible": ["question generation", "dependency parsing"],
    },
    "Bing Xiang": {
        "true": [
            "tuning hyperparameters efficiently",
            "slot filling with LSTM encoders",
            "classifying relations with CNNs",
            "knowledge base question answering",
            "sentiment analysis of tweets",
            "hyper-parameter optimisation",
            "ranking-based relation classification",
        ],
        "lookalike": ["optimal transport", "classical music", "rankine cycle"],
        "plausible": ["coreference resolution", "speech synthesis"],
    },
    "Xianpei Han": {
        "true": [
            "lexical selection in statistical MT",
            "extracting relations with distant supervision",
            "commonsense reasoning",
            "mining query subtopics",
            "tree kernels for relation extraction",
            "distantly supervised relation extractors",
            "topic models for translation",
        ],
        "lookalike": ["commonwealth history", "collectivist cultures"],
        "plausible": ["speech emotion recognition", "poetry generation"],
    },
    "Mo Yu": {
        "true": [
            "compositional embedding models",
            "improving word embeddings with semantic knowledge",
            "matching Chinese names",
            "relation detection for question answering",
            "extracting relations",
            "semantically enriched lexical embeddings",
            "name matching applications",
        ],
        "lookalike": ["composting food waste", "lexicographic orderings"],
        "plausible": ["dialogue act tagging", "meeting summarization"],
    },
    "Carlo Strapparava": {
        "true": [
            "identifying metaphors in proverbs",
            "native language identification",
            "sensorial lexicons",
            "etymology of words",
            "second language learning",
            "automatically constructed lexicons",
            "spelling errors of language learners",
        ],
        "lookalike": ["sensor networks", "automata theory"],
        "plausible": ["conversational agents", "question answering"],
    },
    "Jinsong Su": {
        "true": [
            "implicit discourse relations",
            "variational neural translation",
            "recursive autoencoders",
            "bilingual synthetic data",
            "statistical machine translation",
            "discourse relation recognizers",
            "bilingually constrained autoencoders",
        ],
        "lookalike": ["graphene transistors", "topical ointments"],
        "plausible": ["sentiment lexicons", "entity linking"],
    },
}
"""Claims per user (their largest LaMP-5-like history), written from the titles alone."""


def _support(claims: Sequence[str], items: Sequence[HistoryItem], stems: Callable) -> list[float]:
    seen: set[str] = set()
    for item in items:
        seen |= stems(item.text)
    out = []
    for claim in claims:
        words = stems(claim)
        out.append(len(words & seen) / len(words) if words else 0.0)
    return out


def _rates(true: list[float], invented: list[float]) -> dict[str, Any]:
    tp = sum(s >= SUPPORTED for s in true)
    fp = sum(s >= SUPPORTED for s in invented)
    return {
        "recall_true": round(tp / len(true), 3),
        "false_support_invented": round(fp / len(invented), 3),
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "auc": round(_auc(true, invented), 3),
        "n_true": len(true),
        "n_invented": len(invented),
    }


def _auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(a true claim's share > an invented one's), ties counting half."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def _lamp5() -> tuple[list[dict], dict[str, str]]:
    questions = json.loads(LAMP5.read_text())
    golds = json.loads((LAMP5.parent / "outputs.json").read_text())["golds"]
    return questions, {g["id"]: g["output"] for g in golds}


def _history(question: dict) -> list[HistoryItem]:
    return [to_history_item(p) for p in question["profile"] if p.get("abstract")]


def claims_section(questions: list[dict], titles: dict[str, str], limit: int) -> dict[str, Any]:
    by_user: dict[str, list[dict]] = collections.defaultdict(list)
    for q in questions:
        by_user[q["user"]].append(q)
    largest = {u: max(qs, key=lambda q: len(q["profile"])) for u, qs in by_user.items()}

    # hand-written claims; the fixture rule: no invented claim shares a word with the history
    hand: dict[str, dict[str, list[float]]] = {}
    per_claim = []
    for user, claims in CLAIMS.items():
        items = _history(largest[user])
        words = {w.lower() for item in items for w in _WORD.findall(item.text)}
        for claim in claims["lookalike"] + claims["plausible"]:
            shared = ({w.lower() for w in _WORD.findall(claim)} - STOPWORDS) & words
            assert not shared, (user, claim, shared)
        for kind, group in claims.items():
            before = _support(group, items, prefix_stems)
            after = _support(group, items, content_stems)
            package = claim_support(group, items)  # the package's own, rounded
            assert all(abs(package[c] - x) < 1e-3 for c, x in zip(group, after, strict=True))
            for claim, b, a in zip(group, before, after, strict=True):
                per_claim.append(
                    {"user": user, "kind": kind, "claim": claim, "before": b, "after": a}
                )
            for label, values in (("before", before), ("after", after)):
                hand.setdefault(label, {}).setdefault(kind, []).extend(values)

    # natural claims: own next title vs another user's next title
    rng = random.Random(0)
    pool = [q for q in questions if q["id"] in titles and _history(q)]
    rng.shuffle(pool)
    pool = pool[:limit]
    natural: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for q in pool:
        items = _history(q)
        own = titles[q["id"]]
        known = {p["id"] for p in q["profile"]} | {q["id"]}
        other = next(
            o
            for o in rng.sample(pool, len(pool))
            if o["user"] != q["user"] and o["id"] not in known and titles[o["id"]] != own
        )
        for label, stems in (("before", prefix_stems), ("after", content_stems)):
            s_own, s_other = _support([own, titles[other["id"]]], items, stems)
            natural[label].setdefault("true", []).append(s_own)
            natural[label].setdefault("invented", []).append(s_other)

    def hand_rates(label: str) -> dict[str, Any]:
        g = hand[label]
        return {
            "all invented": _rates(g["true"], g["lookalike"] + g["plausible"]),
            "look-alike invented": _rates(g["true"], g["lookalike"]),
            "plausible invented": _rates(g["true"], g["plausible"]),
        }

    return {
        "threshold": SUPPORTED,
        "hand": {label: hand_rates(label) for label in ("before", "after")},
        "natural": {
            label: _rates(natural[label]["true"], natural[label]["invented"])
            for label in ("before", "after")
        },
        "natural_queries": len(pool),
        "hand_users": len(CLAIMS),
        "changed_claims": [
            c for c in per_claim if (c["before"] >= SUPPORTED) != (c["after"] >= SUPPORTED)
        ],
    }


# =========================================================================== 2. sentences
ABSTRACT_BOUNDARIES = {
    "P14-2128": [93, 159, 257, 444],
    "P15-1081": [106, 267],
    "D14-1169": [170, 330, 554, 753],
    "D17-1176": [162, 376, 491],
    "P16-1010": [110, 293, 401, 510, 671],
    "P15-2125": [142, 277, 423, 624],
    "P15-1030": [161, 378, 494, 642, 749],
    "P14-1027": [355, 657, 820, 1025],
    "P15-2090": [332],
    "P14-2030": [239, 430, 570],
    "P16-2084": [164, 269, 391, 478, 732],
    "D17-1026": [128, 247, 371, 618, 730, 923],
    "P16-1006": [186, 362, 564, 666],
    "D15-1272": [153, 289, 465],
    "D17-1294": [120, 348, 481, 577, 718, 915],
    "D15-1152": [181, 338],
    "P17-1080": [128, 246, 502, 719, 860],
    "D17-1155": [98, 220, 399],
    "P16-1101": [168, 370, 529, 717],
    "P17-1020": [169, 380, 643, 759],
    "D15-1304": [116, 207, 372, 423, 562, 663],
    "P14-1041": [168, 226, 357, 506],
    "D15-1160": [134, 222, 394, 502, 735, 803],
    "D15-1078": [152, 286, 422, 569, 952, 1018],
    "P17-2090": [122, 215, 427],
    "D17-1019": [132, 293, 517, 810],
    "P14-1109": [144, 282, 455, 728, 1001],
    "P15-1036": [114, 206, 337, 469],
    "D15-1028": [181, 418],
    "D17-1096": [130, 234, 356, 478, 635, 793],
    "P14-1008": [153, 327, 403, 553],
    "D16-1243": [80, 202, 348, 480],
    "P15-2003": [111, 263, 485, 628],
    "P15-2073": [157, 269],
    "P17-2087": [121, 324, 454],
}
"""Where each sentence after the first starts (character offset) in the abstract of these
LaMP-5-like profile papers, labelled by hand (a GROBID footnote mark such as a trailing "1"
counts as its own sentence)."""

HAND_SENTENCES = [
    ["Works on MT.", "Writes short titles!"],
    ["Works on neural machine translation, e.g. low-resource NMT.", "Titles are short."],
    [
        "The author studies parsing, i.e. dependency and constituency parsing.",
        "Titles often use a colon.",
    ],
    ["Builds on Vaswani et al. (2017) for translation.", "Reports BLEU gains of 1.5 points."],
    ["Dr. Chen studies dialogue systems.", "Her titles are questions."],
    ["Accuracy improves from 91.2 to 93.4 percent.", "Code is released."],
    ["Code and data are at https://github.com/example/repo.", "The titles name the dataset."],
    ["Is sentiment analysis solved?", "This author thinks not."],
    ["Studies word embeddings vs. contextual models.", "Writes in Title Case."],
    ["Interested in QA and IR.", "Titles usually include an acronym such as BERT."],
    ["Works on speech recognition for the U.S. market.", "Prefers short titles."],
    ["The research covers NLP.", "It focuses on semantic parsing."],
    ["Publishes on summarization (see Sec. 3 of most papers).", "Uses ROUGE."],
    ["Topics include NER, POS tagging, etc.", "Titles are 8 words long."],
    ["Topics include NER, POS tagging, etc. in low-resource languages.", "Titles are short."],
    [
        "Writes about graph neural networks.",
        "Recent work extends GCNs to text.",
        "Style is formal.",
    ],
    ["The user writes casual tweets!", "Lots of emoji and slang."],
    ["Compares CRFs and LSTMs, cf. Lample et al. (2016).", "Titles use a colon."],
    ["Reports an F1 of 0.87 on CoNLL-2003.", "Works on NER."],
    ["Works on MT for Chinese-English.", "Uses BLEU and TER."],
    ["Studies knowledge graphs, e.g., Freebase and Wikidata.", "Titles are Title Case."],
    ["A typical title is about 9 words.", "Most titles contain a colon, e.g. 'X: Y'."],
    ["Their approach is described at www.example.org.", "They work on IE."],
    ["He is a Ph.D. student working on syntax.", "Titles are short."],
    ["Mr. Smith writes about MT evaluation.", "He uses METEOR."],
    ["Works on ASR.", "Models are trained on 1,000 hours of audio."],
    ["Studies multilingual BERT (mBERT).", "Writes long titles."],
    ["Interests: parsing, tagging, and NLI.", "Summary: formal style."],
    ["The work extends Lee et al.'s coreference model.", "It is evaluated on OntoNotes 5.0."],
    ["Uses approx. 10k sentences per language.", "Titles mention the language."],
    ["As Fig. 2 shows, recall improves.", "Precision stays flat."],
]
"""Profile-summary-like texts, one list of gold sentences each (joined by a space)."""


def _boundaries(text: str, parts: Sequence[str]) -> set[int]:
    out, pos = set(), 0
    for i, part in enumerate(parts):
        at = text.find(part, pos)
        assert at >= 0, (part, text)
        if i:
            out.add(at)
        pos = at + len(part)
    return out


def _split_errors(cases: list[tuple[str, set[int]]], split: Callable) -> dict[str, Any]:
    false = missed = exact = 0
    wrong = []
    for text, gold in cases:
        found = _boundaries(text, split(text))
        false += len(found - gold)
        missed += len(gold - found)
        exact += found == gold
        if found != gold:
            wrong.append(split(text))
    return {
        "texts": len(cases),
        "boundaries": sum(len(g) for _, g in cases),
        "false_splits": false,
        "missed": missed,
        "errors": false + missed,
        "texts_exact": exact,
        "wrong": wrong,
    }


def _per_call_ms(texts: Sequence[str], split: Callable, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            split(text)
    return round(1000 * (time.perf_counter() - start) / (repeat * len(texts)), 4)


def sentences_section(questions: list[dict]) -> dict[str, Any]:
    abstracts = {
        p["id"]: p["abstract"] for q in questions for p in q["profile"] if p.get("abstract")
    }
    real = [(abstracts[pid], set(b)) for pid, b in ABSTRACT_BOUNDARIES.items()]
    hand = [(" ".join(parts), _boundaries(" ".join(parts), parts)) for parts in HAND_SENTENCES]
    out: dict[str, Any] = {}
    for name, cases in (("abstracts", real), ("profile texts", hand)):
        out[name] = {
            "before": _split_errors(cases, regex_sentences),
            "after": _split_errors(cases, sentences),
        }
    texts = [t for t, _ in real]
    out["ms_per_abstract"] = {
        "before": _per_call_ms(texts, regex_sentences, 20),
        "after_first_call": _per_call_ms(texts, _sentences.__wrapped__, 2),  # no cache
        "after_cached": _per_call_ms(texts, sentences, 20),  # warm: the cases above ran
    }
    return out


# =========================================================================== 3. intervals
def _populations() -> dict[str, np.ndarray]:
    """Per-item ROUGE-1 of earlier evaluation runs, and paired per-item differences."""

    def scores(run: str, golds_file: Path) -> dict[str, np.ndarray]:
        golds = {g["id"]: g["output"] for g in json.loads(golds_file.read_text())["golds"]}
        rows = [json.loads(line) for line in (EVAL_RUNS / run / "results.jsonl").open()]
        by_method: dict[str, dict[str, str]] = collections.defaultdict(dict)
        for row in rows:
            by_method[row["method"]][row["item_id"]] = row["output"]
        out = {}
        for method, outputs in by_method.items():
            ids = sorted(outputs)
            out[method] = np.array(
                metrics.rouge_scores([outputs[i] for i in ids], [golds[i] for i in ids])["rouge-1"]
            )
        return out

    lamp7 = scores("LaMP-7-100", DATA / "LaMP_7" / "outputs.json")
    lamp5 = scores("LaMP-5-80", DATA / "LaMP_5_like" / "outputs.json")
    return {
        "LaMP-7 style, ROUGE-1 (100 items)": lamp7["style"],
        "LaMP-5-like few-shot, ROUGE-1 (80 items)": lamp5["few-shot"],
        "LaMP-7 style - non-personalized (paired)": lamp7["style"] - lamp7["non-personalized"],
        "LaMP-5-like few-shot - non-personalized (paired)": lamp5["few-shot"]
        - lamp5["non-personalized"],
        "LaMP-5-like few-shot - few-shot-other (paired)": lamp5["few-shot"]
        - lamp5["few-shot-other"],
    }


def _scipy_percentile(values: np.ndarray, seed: int) -> tuple[float, float]:
    from scipy import stats

    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=1000,
        method="percentile",
        vectorized=True,
        **{metrics._rng_keyword(): np.random.default_rng(seed)},
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def intervals_section(draws: int, sizes: Sequence[int]) -> dict[str, Any]:
    populations = _populations()
    rng = np.random.default_rng(123)
    rows = []
    ways: dict[str, Callable[[np.ndarray, int], tuple[float, float]]] = {
        "before (hand percentile)": hand_percentile,
        "scipy percentile": _scipy_percentile,
        "after (scipy BCa)": lambda v, seed: metrics.bootstrap_ci(v, seed=seed)[1:],
    }
    for name, population in populations.items():
        truth = float(population.mean())
        for n in sizes:
            hits = dict.fromkeys(ways, 0)
            widths: dict[str, list[float]] = {way: [] for way in ways}
            for draw in range(draws):
                sample = rng.choice(population, n, replace=True)
                for way, interval in ways.items():
                    if np.ptp(sample) == 0:  # one value: every way gives a point
                        low = high = float(sample[0])
                    else:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", FewItemsWarning)
                            low, high = interval(sample, draw)
                    hits[way] += low <= truth <= high
                    widths[way].append(high - low)
            rows.append(
                {
                    "population": name,
                    "n": n,
                    **{f"coverage {w}": round(hits[w] / draws, 3) for w in ways},
                    **{f"width {w}": round(float(np.mean(widths[w])), 4) for w in ways},
                }
            )
    # what a 3-item comparison prints (two methods with the same outputs on 3 items)
    same = [0.25, 0.5, 0.4]
    zero = np.asarray(same) - np.asarray(same)
    old_low, old_high = hand_percentile(zero, 0)
    old_cell = {"diff": float(zero.mean()), "low": old_low, "high": old_high}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diff, low, high = metrics.paired_bootstrap(same, same)
    new_cell = {
        "diff": diff,
        "low": low,
        "high": high,
        "meaningful": len(same) >= metrics.MIN_ITEMS,
    }
    return {
        "draws": draws,
        "sizes": list(sizes),
        "resamples": 1000,
        "confidence": 0.95,
        "rows": rows,
        "three_items": {
            "before": _signed(old_cell),
            "after": _signed(new_cell),
            "warning": next(
                (str(w.message) for w in caught if issubclass(w.category, FewItemsWarning)), None
            ),
        },
    }


# =========================================================================== 4. JSON answers
def json_section() -> dict[str, Any]:
    from langchain_core.utils.json import parse_json_markdown

    rows = json.loads(MALFORMED.read_text(encoding="utf-8"))["answers"]

    def markdown_only(text: str) -> Any:
        try:
            value = parse_json_markdown(text)
            return ProfileDraft.model_validate(value) if isinstance(value, dict) else None
        except Exception:
            return None

    def package(text: str) -> Any:
        try:
            return distill.parse_draft(text)
        except ValueError:
            return None

    def strict_scan(text: str) -> Any:
        mend, distill._repaired_json = distill._repaired_json, lambda *a, **k: None
        try:
            return package(text)
        finally:
            distill._repaired_json = mend

    ways = {
        "before: parse_json_markdown": markdown_only,
        "JSON scan alone": strict_scan,
        "after: JSON scan + json-repair": package,
    }
    per_answer = []
    for row in rows:
        got = {}
        for way, parse in ways.items():
            draft = parse(row["answer"])
            got[way] = bool(draft is not None and row["interest"] in draft.interests)
        per_answer.append({"name": row["name"], **got})
    return {
        "answers": len(rows),
        "recovered": {way: sum(a[way] for a in per_answer) for way in ways},
        "per_answer": per_answer,
    }


# =========================================================================== report
def _gap(row: dict[str, Any], way: str) -> float:
    """How far an interval's coverage is from the nominal 95%."""
    return abs(row[f"coverage {way}"] - 0.95)


def _markdown(payload: dict[str, Any], machine: dict[str, Any]) -> str:
    c, s, iv, js = (payload[k] for k in ("claims", "sentences", "intervals", "json"))
    lines = [
        "# Text tools: before and after",
        "",
        f"`{payload['command']}`; {payload['seconds']:.0f} s. Fixtures and how they were built: "
        "the docstring of `bench/text_tools.py`.",
        "",
        "## 1. Claim support: five-letter prefixes -> Snowball stems",
        "",
        f"A claim counts as supported when at least {c['threshold']:.0%} of its content words "
        "are found in the history (`profile.SUPPORTED`). False support = share of invented "
        "claims counted as supported (lower is better); recall = share of true claims counted "
        "as supported; AUC = chance that a true claim's share beats an invented one's. In the "
        "natural fixture a next title may well be about something new, so its recall is a proxy "
        "and AUC the fairer figure.",
        "",
    ]
    rows = []
    for fixture, label in (
        ("all invented", "hand-written, all invented"),
        ("look-alike invented", "hand-written, look-alike stems"),
        ("plausible invented", "hand-written, plausible topics"),
    ):
        b, a = c["hand"]["before"][fixture], c["hand"]["after"][fixture]
        rows.append(
            [
                f"{label} ({a['n_true']} true / {a['n_invented']} invented)",
                f"{b['false_support_invented']:.3f} -> {a['false_support_invented']:.3f}",
                f"{b['recall_true']:.3f} -> {a['recall_true']:.3f}",
                f"{b['precision']:.3f} -> {a['precision']:.3f}",
                f"{b['auc']:.3f} -> {a['auc']:.3f}",
            ]
        )
    b, a = c["natural"]["before"], c["natural"]["after"]
    rows.append(
        [
            f"natural: own next title vs another user's ({c['natural_queries']} queries)",
            f"{b['false_support_invented']:.3f} -> {a['false_support_invented']:.3f}",
            f"{b['recall_true']:.3f} -> {a['recall_true']:.3f}",
            f"{b['precision']:.3f} -> {a['precision']:.3f}",
            f"{b['auc']:.3f} -> {a['auc']:.3f}",
        ]
    )
    lines += [
        md_table(["fixture", "false support", "recall", "precision", "AUC"], rows),
        "",
        "Hand-written claims whose verdict changed:",
        "",
        md_table(
            ["user", "kind", "claim", "share before", "share after"],
            [
                [x["user"], x["kind"], x["claim"], f"{x['before']:.2f}", f"{x['after']:.2f}"]
                for x in c["changed_claims"]
            ],
        ),
        "",
        "## 2. Sentence splitting: regex -> pysbd",
        "",
    ]
    rows = []
    for name in ("abstracts", "profile texts"):
        b, a = s[name]["before"], s[name]["after"]
        rows.append(
            [
                f"{name} ({a['texts']} texts, {a['boundaries']} boundaries)",
                f"{b['false_splits']} -> {a['false_splits']}",
                f"{b['missed']} -> {a['missed']}",
                f"{b['errors']} -> {a['errors']}",
                f"{b['texts_exact']} -> {a['texts_exact']}",
            ]
        )
    ms = s["ms_per_abstract"]
    lines += [
        md_table(["fixture", "false splits", "missed", "errors", "texts split right"], rows),
        "",
        f"Time per abstract: regex {ms['before']} ms; pysbd {ms['after_first_call']} ms on a "
        f"text's first call, {ms['after_cached']} ms after (results are cached per text).",
        "",
        "Where pysbd is still wrong (profile texts):",
        "",
        *[f"- {' | '.join(w)}" for w in s["profile texts"]["after"]["wrong"]],
        "",
        "## 3. Bootstrap intervals: hand percentile -> scipy BCa",
        "",
        f"Coverage of the true mean by nominal {iv['confidence']:.0%} intervals "
        f"({iv['resamples']} resamples) over {iv['draws']} draws of n items from each "
        "population (the items of an earlier run taken as the population).",
        "",
    ]
    ways = ["before (hand percentile)", "scipy percentile", "after (scipy BCa)"]
    summary = []
    for n in iv["sizes"]:
        at_n = [r for r in iv["rows"] if r["n"] == n]
        summary.append(
            [
                n,
                *(
                    f"{np.mean([r[f'coverage {w}'] for r in at_n]):.3f} "
                    f"({min(r[f'coverage {w}'] for r in at_n):.3f}-"
                    f"{max(r[f'coverage {w}'] for r in at_n):.3f})"
                    for w in (ways[0], ways[2])
                ),
                sum(_gap(r, ways[2]) < _gap(r, ways[0]) for r in at_n),
                sum(_gap(r, ways[2]) > _gap(r, ways[0]) for r in at_n),
            ]
        )
    lines += [
        md_table(
            [
                "n",
                "mean coverage before (range)",
                "mean coverage after (range)",
                "populations BCa closer to 95%",
                "further",
            ],
            summary,
        ),
        "",
        "Per population:",
        "",
    ]
    lines += [
        md_table(
            ["population", "n", *(f"coverage {w}" for w in ways), "width before / after"],
            [
                [
                    r["population"],
                    r["n"],
                    *(f"{r[f'coverage {w}']:.3f}" for w in ways),
                    f"{r['width ' + ways[0]]:.3f} / {r['width ' + ways[2]]:.3f}",
                ]
                for r in iv["rows"]
            ],
        ),
        "",
        f"A 3-item paired difference of two methods with the same outputs: before "
        f"`{iv['three_items']['before']}`, after `{iv['three_items']['after']}` with the warning "
        f'"{iv["three_items"]["warning"]}".',
        "",
        "## 4. Malformed JSON answers recovered without a repair call",
        "",
        md_table(
            ["parser", f"recovered of {js['answers']}"],
            [[way, n] for way, n in js["recovered"].items()],
        ),
        "",
        md_table(
            ["answer", *js["recovered"]],
            [
                [a["name"], *("yes" if a[w] else "no" for w in js["recovered"])]
                for a in js["per_answer"]
            ],
        ),
        "",
        "## Reproduce",
        "",
        f"`{payload['command']}`",
        "",
        machine_md(machine),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries and draws")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    machine = machine_info()
    started = time.perf_counter()
    questions, titles = _lamp5()
    payload: dict[str, Any] = {
        "claims": claims_section(questions, titles, limit=150 if args.quick else 10**6),
        "sentences": sentences_section(questions),
        "intervals": intervals_section(
            draws=40 if args.quick else 400, sizes=(5, 10) if args.quick else (5, 10, 20, 40, 80)
        ),
        "json": json_section(),
    }
    payload = {
        **report_head(NAME, argv, machine),
        "seconds": round(time.perf_counter() - started, 1),
        **payload,
        "machine": machine,
    }
    write_json(args.out / f"{NAME}.json", payload)
    (args.out / f"{NAME}.md").write_text(_markdown(payload, machine))
    print((args.out / f"{NAME}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
