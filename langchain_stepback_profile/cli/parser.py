"""The argument parser of ``stepback-profile`` and the types of its option values.

Building the parser imports nothing heavy: every choice comes from
:mod:`langchain_stepback_profile.names`, and each command's function is named (``handler``,
a name in :mod:`~langchain_stepback_profile.cli.commands`) and imported only when the command
runs, so ``--help`` and a usage error load no LangChain, NumPy or FAISS.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.names import (
    ATTRIBUTION,
    ATTRIBUTION_ROWS,
    EVAL_TASK_NAMES,
    FORMATS,
    GROUP_MODES,
    METHOD_NAMES,
    PROFILE_STRATEGIES,
    PROMPT_STRATEGIES,
    TASK_NAMES,
    WRITING_TASKS,
    check_user_id,
    is_store_url,
)

PROG = "stepback-profile"
DEFAULT_STORE = Path(".stepback-profile/store")
DEFAULT_TASK = "scholarly_title"
DEFAULT_K = 2


# --------------------------------------------------------------------- option values
class ModelSpec(NamedTuple):
    """A parsed ``--llm`` / ``--embeddings`` value: the built-in model, or ``openai:MODEL``."""

    provider: str
    model: str = ""

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" if self.model else self.provider


def store_location(value: str) -> Path | str:
    """A ``--store`` value: a PostgreSQL URL as given, anything else a folder path."""
    return value if is_store_url(value) else Path(value)


def _model_spec(builtin: str, example: str) -> Callable[[str], ModelSpec]:
    """An argparse type for ``builtin``, ``openai:MODEL`` (with ``--base-url`` for any
    OpenAI-compatible server) or any LangChain provider string (``anthropic:...``,
    ``ollama:...``: ``init_chat_model`` / ``init_embeddings``)."""

    def parse(text: str) -> ModelSpec:
        if text == builtin:
            return ModelSpec(builtin)
        provider, colon, model = text.partition(":")
        if colon and model.strip() and re.fullmatch(r"[a-z][a-z0-9_-]*", provider):
            return ModelSpec(provider, model.strip())
        raise argparse.ArgumentTypeError(
            f"unknown model {text!r}; use {builtin!r}, openai:MODEL (e.g. openai:{example}) "
            "or a LangChain provider string such as anthropic:MODEL or ollama:MODEL"
        )

    return parse


def _task(text: str) -> str:
    if text not in TASK_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown task {text!r}; use one of: {', '.join(sorted(TASK_NAMES))}"
        )
    return text


def _user_list(text: str) -> list[str]:
    # User ids never start or end with whitespace (check_user_id), so trimming the spaces
    # around the commas of "A, B" cannot turn one user's id into another's.
    users = [u.strip() for u in text.split(",") if u.strip()]
    if not users:
        raise argparse.ArgumentTypeError(f"no user ids in {text!r}; give A,B,... in author order")
    return [_user(u) for u in users]


def _user(text: str) -> str:
    try:
        return check_user_id(text)
    except InvalidArgumentError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


_LLM = _model_spec("local", "gpt-4o-mini")
_EMBEDDINGS = _model_spec("minilm", "text-embedding-3-small")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (importing
    ``importlib.metadata`` costs more than building the whole parser)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import version

        sys.stdout.write(f"{parser.prog} {version('langchain-stepback-profile')}\n")
        parser.exit()


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options every command takes, before or after the command name (SUPPRESS keeps a value
    given before the command when the command's own parser does not see the option)."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--store",
        type=store_location,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=f"store folder (default ./{DEFAULT_STORE}), or a PostgreSQL URL "
        "postgresql://user:password@host:5432/db shared by many machines",
    )
    group.add_argument(
        "--task",
        type=_task,
        default=argparse.SUPPRESS,
        help=f"what the histories are: {', '.join(sorted(TASK_NAMES))} (default: the task the "
        f"store remembers, else {DEFAULT_TASK}; ingest and profile build make it remember one)",
    )
    group.add_argument(
        "--llm",
        type=_LLM,
        default=argparse.SUPPRESS,
        metavar="SPEC",
        help="chat model: 'local' (embedded SmolLM2-135M, the default) or openai:MODEL",
    )
    group.add_argument(
        "--base-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="base URL of an OpenAI-compatible server, for openai: models",
    )
    group.add_argument(
        "--embeddings",
        type=_EMBEDDINGS,
        default=argparse.SUPPRESS,
        metavar="SPEC",
        help="embedding model: 'minilm' (offline, the default) or openai:MODEL; a store "
        "only opens with the model it was made with",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as one JSON object on stdout",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and the package's debug logging",
    )


def _add_k(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--k",
        type=_positive,
        default=DEFAULT_K,
        help=f"history items retrieved per user (default {DEFAULT_K})",
    )


def _add_generation(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that generate for a group (``query``, ``write``)."""
    parser.add_argument(
        "--users",
        type=_user_list,
        action="extend",
        required=True,
        metavar="A,B",
        help="the users, in author order (the first leads)",
    )
    _add_k(parser)
    parser.add_argument(
        "--strategy",
        choices=PROMPT_STRATEGIES,
        default="auto",
        help="prompt layout: paper (profiles + retrieved items), few_shot (the users' own "
        "earlier pairs as chat turns), plain (no personalization); auto picks few_shot for "
        "small local models (paper for outputs no history item holds: interests, topic, "
        "questions) and paper otherwise",
    )
    parser.add_argument(
        "--candidates",
        type=_positive,
        metavar="N",
        help="answers to draw, keeping the one whose words the input holds best (default: 3 "
        "for a small model in the few_shot layout, else 1)",
    )
    parser.add_argument(
        "--group-mode",
        choices=GROUP_MODES,
        default="concat",
        help="how a group's answer is written: concat (every author's profile and history in "
        "one prompt, in author order: one LLM call) or two_stage (each author proposes from "
        "their own, the first author merges: one call per author plus one)",
    )
    parser.add_argument(
        "--style-gists",
        action="store_true",
        help="show each retrieved item beside its style gist (one line: its tone, by the "
        "model once per item, and its measured length and structure, cached in the store: k "
        "more LLM calls the first time, 0 after; profile build --style-gists writes them "
        "ahead); in the paper layout only",
    )
    parser.add_argument(
        "--no-control",
        action="store_true",
        help="return the model's raw answer (no cleaning, length cut or chat/copy guard)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also print what each author put into the prompt: their profile and retrieved "
        "items (with scores), each marked in the prompt or not; with two_stage each author's "
        "proposal and the merge",
    )


def _command(
    subparsers: Any,
    name: str,
    handler: str,
    help_: str,
    example: str,
    **options: Any,
) -> argparse.ArgumentParser:
    """A subcommand parser with the common options; ``options`` go to ``add_parser``.
    ``handler`` names the command's function in
    :mod:`~langchain_stepback_profile.cli.commands` (imported when the command runs)."""
    parser = subparsers.add_parser(
        name,
        help=help_.replace("%", "%%"),  # argparse formats help with %, not descriptions
        description=help_,
        epilog=f"Example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **options,
    )
    _add_common(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``stepback-profile``."""
    parser = _Parser(
        prog=PROG,
        description="Step-back user profiles: ingest histories, build LLM-written profiles, "
        "and personalize generation for one user or an ordered group.",
        epilog="Example:\n"
        f"  {PROG} ingest questions.json\n"
        f"  {PROG} profile build\n"
        f'  {PROG} query --users "Regina Barzilay,Michael Collins" "We study ..." --explain\n\n'
        f"Run `{PROG} COMMAND --help` for each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    _add_common(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ingest = _command(
        commands,
        "ingest",
        "cmd_ingest",
        "Add the history items of a file to users' histories (the whole file is checked first).",
        f"  {PROG} ingest questions.json            # LaMP: [{{id, input, profile, user?}}]\n"
        f"  {PROG} ingest tweets.jsonl --user alice  # lines without user_id are alice's\n"
        f"  {PROG} ingest papers.csv                 # header: user_id,title,abstract,...",
    )
    ingest.add_argument("file", type=Path, metavar="FILE", help="LaMP .json, .jsonl or .csv")
    ingest.add_argument(
        "--user",
        type=_user,
        help="ingest only this user's items; items that name no user are given to them",
    )
    ingest.add_argument(
        "--format",
        choices=FORMATS,
        help="file format (default: from the extension, else the first character)",
    )

    profile = commands.add_parser(
        "profile",
        help="Build or show step-back profiles.",
        description="Build or show step-back profiles.",
        epilog=f"Example:\n  {PROG} profile build\n  {PROG} profile show alice",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(profile)
    profile_commands = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    profile_commands.required = True
    build = _command(
        profile_commands,
        "build",
        "cmd_profile_build",
        "Build or update profiles (an unchanged history costs 0 LLM calls).",
        f"  {PROG} profile build\n"
        f'  {PROG} profile build --users "alice,bob" --task tweet_paraphrase\n'
        f"  {PROG} profile build --llm openai:gpt-4o-mini --concurrency 8\n"
        f"  {PROG} profile build --style-gists   # and each item's style gist\n"
        f"  {PROG} profile build --store postgresql://app@db/profiles --workers 4 \\\n"
        "      --llm openai:MODEL --base-url URL   # the same on every machine",
    )
    build.add_argument(
        "--users", type=_user_list, action="extend", metavar="A,B", help="only these users"
    )
    build.add_argument(
        "--concurrency",
        type=_positive,
        default=4,
        metavar="N",
        help="profiles built at once with an openai: model (default 4; the local model "
        "builds one at a time); with --workers, in each worker",
    )
    build.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes on this machine that split the build through a postgresql:// "
        "store, each claiming one user at a time (default 1 there; a folder store builds in "
        "one process). The same command on other machines joins the running build",
    )
    build.add_argument(
        "--job",
        default=None,
        metavar="NAME",
        help="the shared build to start or join (default profile-build): commands with the "
        "same name split one build; its report lists every worker's users",
    )
    build.add_argument(
        "--style-gists",
        action="store_true",
        help="also write the style gist of every item that has none for this model (one LLM "
        "call per item), so that query --style-gists costs 0 gist calls",
    )
    build.add_argument(
        "--profile-strategy",
        choices=PROFILE_STRATEGIES,
        default=None,
        help="llm: the paper's profile, written by the model from the history; hybrid: "
        "measured topics and style, the model writes the summary (one short call); "
        "extractive: no LLM; auto: extractive for small local models, llm for others (default: "
        "the store's last choice, else auto)",
    )
    show = _command(
        profile_commands,
        "show",
        "cmd_profile_show",
        "Show a user's latest profile.",
        f"  {PROG} profile show alice\n  {PROG} profile show alice --json | jq .interests",
    )
    show.add_argument("user", type=_user, metavar="USER")
    edit = _command(
        profile_commands,
        "edit",
        "cmd_profile_edit",
        "Edit a user's profile by hand; edited fields are kept through later refreshes.",
        f'  {PROG} profile edit alice --summary "Writes short, punchy titles."\n'
        f'  {PROG} profile edit alice --interests "parsing; machine translation" --tone dry\n'
        f'  {PROG} profile edit alice --file edit.json   # {{"summary": "..."}}',
    )
    edit.add_argument("user", type=_user, metavar="USER")
    edit.add_argument("--summary", help="the new summary")
    edit.add_argument("--interests", metavar="'A; B'", help="interests, separated by ;")
    edit.add_argument("--keywords", metavar="'A; B'", help="keywords, separated by ;")
    for name in ("tone", "length", "structure", "vocabulary"):
        edit.add_argument(f"--{name}", help=f"the style's {name}")
    edit.add_argument("--file", type=Path, metavar="FILE", help="a JSON object of fields")
    export = _command(
        profile_commands,
        "export",
        "cmd_profile_export",
        "Export every version of the users' profiles as JSON (to stdout or --output).",
        f"  {PROG} profile export > profiles.json\n"
        f'  {PROG} profile export --users "alice,bob" --output profiles.json',
    )
    export.add_argument(
        "--users", type=_user_list, action="extend", metavar="A,B", help="only these users"
    )
    export.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    import_ = _command(
        profile_commands,
        "import",
        "cmd_profile_import",
        "Import profiles that profile export wrote (new users get every version).",
        f"  {PROG} profile import profiles.json --store ./other-store",
    )
    import_.add_argument("file", type=Path, metavar="FILE", help="the export ('-' reads stdin)")
    rollback = _command(
        profile_commands,
        "rollback",
        "cmd_profile_rollback",
        "Make an earlier profile version current again (stored as a new version).",
        f"  {PROG} profile rollback alice 2",
    )
    rollback.add_argument("user", type=_user, metavar="USER")
    rollback.add_argument("version", type=_positive, metavar="VERSION")

    query = _command(
        commands,
        "query",
        "cmd_query",
        "Generate for an ordered group of users (one LLM call; three with a small model).",
        f'  {PROG} query --users "Regina Barzilay,Michael Collins" "In this paper, we ..."\n'
        f'  {PROG} query --users alice --task tweet_paraphrase --explain "so tired today"\n'
        f"  cat abstract.txt | {PROG} query --users alice,bob -",
    )
    query.add_argument("input", metavar="INPUT", help="the text to personalize ('-' reads stdin)")
    _add_generation(query)

    write = _command(
        commands,
        "write",
        "cmd_write",
        "Write for an ordered author group: their research interests, a topic, research "
        "questions, an abstract or a title (a list, a phrase, a list, a paragraph, a line).",
        f'  {PROG} write --task interests --users "Regina Barzilay,Michael Collins"\n'
        f"  {PROG} write --task abstract --users alice,bob --input notes.txt --explain\n"
        f"  cat abstract.txt | {PROG} write --task title --users alice,bob --input -",
        conflict_handler="resolve",  # its own --task replaces the common one
    )
    write.add_argument(
        "--task",
        required=True,
        choices=list(WRITING_TASKS),
        help="what to write: interests (a list), topic (a phrase), questions (a list), "
        "abstract (a paragraph), title (a line)",
    )
    write.add_argument(
        "--input",
        metavar="FILE",
        help="the source text ('-' reads stdin): the abstract for a title, the title or "
        "notes for an abstract (both need one); notes or a draft for interests, topic and "
        "questions (optional: without it they come from the authors' profiles and papers)",
    )
    _add_generation(write)

    forget = _command(
        commands,
        "forget",
        "cmd_forget",
        "Remove a user everywhere: history, vectors and every profile version.",
        f"  {PROG} forget alice",
    )
    forget.add_argument("user", type=_user, metavar="USER")

    _command(
        commands,
        "users",
        "cmd_users",
        "List users with their item counts and profile versions.",
        f"  {PROG} users\n  {PROG} users --json | jq -r '.users[].user_id'",
    )
    evaluate = _command(
        commands,
        "eval",
        "cmd_eval",
        "Compare personalization methods on a LaMP or PSW-like split (metrics with 95% CIs, "
        "cost, diagnostics); an interrupted run resumes.",
        f"  {PROG} eval --task LaMP-7 --data ../shared/data/LaMP_7 --limit 20\n"
        f"  {PROG} eval --task PSW-title --data ../shared/data/PSW_like --limit 5 \\\n"
        "      --methods non-personalized,step-back,shuffled,two-stage\n"
        f"  {PROG} eval --task LaMP-5 --data DIR --llm openai:gpt-4o-mini --out eval-out/gpt\n"
        f"  {PROG} eval --task {ATTRIBUTION} --data ../shared/data/LaMP_5_like --limit 100\n"
        f"  {PROG} eval --task PSW-title --data DIR --methods step-back,non-personalized \\\n"
        "      --judge openai:MODEL --base-url URL",
        conflict_handler="resolve",  # its own --task and --store replace the common ones
    )
    evaluate.add_argument(
        "--task",
        required=True,
        choices=[*EVAL_TASK_NAMES, ATTRIBUTION],
        help="the evaluation task: LaMP-1 ... LaMP-7 (questions.json + outputs.json), "
        "PSW-title or PSW-abstract (papers.jsonl + targets.jsonl), or "
        f"{ATTRIBUTION} (no generator: each user's held-out last item ranked against the "
        "profiles of --n-candidates users; the folder of a writing task)",
    )
    evaluate.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="the folder of the split"
    )
    evaluate.add_argument(
        "--limit", type=_positive, metavar="N", help="evaluate N items (a seeded shuffle)"
    )
    evaluate.add_argument(
        "--methods",
        type=_user_list,
        metavar="A,B",
        help=f"methods to compare (default: all that apply): {', '.join(METHOD_NAMES)}; with "
        f"--task {ATTRIBUTION}, rows: {', '.join(ATTRIBUTION_ROWS)} (default all but llm)",
    )
    _add_k(evaluate)
    evaluate.add_argument(
        "--out", type=Path, metavar="DIR", help="results and report (default eval-out/TASK)"
    )
    evaluate.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the evaluation store of histories and profiles (default OUT/store)",
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="item choice, shuffled order, bootstrap (default 0)"
    )
    evaluate.add_argument(
        "--profile-strategy",
        choices=PROFILE_STRATEGIES,
        default="hybrid",
        help="how profiles are written (default hybrid: one short LLM call per user)",
    )
    evaluate.add_argument(
        "--n-candidates",
        type=_positive,
        default=10,
        metavar="N",
        help=f"{ATTRIBUTION}: users each held-out item is ranked among, its author included "
        "(default 10)",
    )
    evaluate.add_argument(
        "--judge",
        type=_LLM,
        metavar="SPEC",
        help="after the run, a chat model compares two methods' outputs pairwise against the "
        "gold and the authors' profiles, both orders (writes OUT/judge.md); like --llm: "
        "'local', openai:MODEL with --base-url, or PROVIDER:MODEL. Real verdicts need a "
        "capable model",
    )
    evaluate.add_argument(
        "--judge-methods",
        type=_user_list,
        metavar="A,B",
        help="the two methods the judge compares (default: the first two of --methods)",
    )
    _command(
        commands,
        "demo",
        "run_demo",
        "Run the offline demo (three real ACL authors; its own store unless --store is given).",
        f"  {PROG} demo --store /tmp/stepback-demo",
    )
    return parser
