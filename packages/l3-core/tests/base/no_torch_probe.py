"""Run by test_no_torch.py in a fresh interpreter where torch and the other extras cannot be
imported: imports every base module and uses the base, then writes what it saw as JSON.

    python no_torch_probe.py OUT.json BLOCKED_JSON MODULES_JSON EXAMPLE_TOML WORKDIR
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import io
import json
import sys
from pathlib import Path


class _Blocked(importlib.abc.MetaPathFinder):
    """Makes the named top-level packages look uninstalled."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the probe)", name=name)
        return None


def _quiet(fn, *args):
    """(return value, stdout, stderr) of ``fn(*args)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        value = fn(*args)
    return value, out.getvalue(), err.getvalue()


def main(out_path: str, blocked_json: str, modules_json: str, example: str, workdir: str) -> None:
    blocked = json.loads(blocked_json)
    sys.meta_path.insert(0, _Blocked(blocked))
    result: dict = {}
    work = Path(workdir)

    for name in json.loads(modules_json):
        importlib.import_module(name)
    result["imported"] = sorted(m for m in sys.modules if m.startswith("l3_core"))

    from l3_core.cli import main as cli
    from l3_core.metrics_schema import MetricsRecord, read_metrics
    from l3_core.run_config import load_run_config, write_run_config
    from l3_core.tokenizer import Tokenizer, llama3_tokenizer_path

    code, out, _ = _quiet(cli, ["presets", "--json"])
    result["presets"] = {"code": code, "rows": json.loads(out)}

    cfg = load_run_config(example)
    result["run_config"] = {
        "world_1": cfg.validate(1).dp,
        "round_trip": load_run_config(write_run_config(work / "run.toml", cfg)) == cfg,
        "vocab": cfg.model.args().vocab_size,
    }

    tok = Tokenizer.from_file(llama3_tokenizer_path())
    result["llama3_ids"] = tok.encode("This is a test sentence.", bos=True, eos=True)

    if importlib.util.find_spec("sentencepiece") is not None:
        from l3_core.tokenizer import train_sentencepiece

        corpus = [Path(importlib.util.find_spec("l3_core.config").origin).read_text()] * 2
        spm = train_sentencepiece(corpus, work / "small.model", vocab_size=400)
        text = "def load_config(cls, path):\n    return  {'a': 1}  # ok"
        ids = spm.encode(text, bos=True, eos=False)
        result["small_bpe"] = {
            "n_words": spm.n_words,
            "bos": ids[0] == spm.bos_id,
            "round_trip": spm.decode(ids[1:]) == text,
        }

    record = MetricsRecord(
        step=1,
        loss=2.5,
        lr=1e-3,
        grad_norm=0.5,
        tokens_per_s=10.0,
        mfu=0.1,
        seq_len=8,
        batch_size=2,
        tokens=16,
        step_time_s=1.6,
        val_loss=2.6,
    )
    (work / "metrics.jsonl").write_text(json.dumps(record.to_json()) + "\n")
    result["metrics_round_trip"] = read_metrics(work) == [record]

    # The commands that need an extra say so in one line, with the dependency exit code.
    code, _, err = _quiet(cli, ["train", "--config", example, "--set", f"run_dir={work / 'r'}"])
    result["train"] = {"code": code, "err": err}
    code, _, err = _quiet(cli, ["info", str(work)])
    result["info"] = {"code": code, "err": err}
    try:
        import l3_core

        l3_core.Transformer  # noqa: B018  (the lazy name's import is the test)
    except ImportError as e:
        result["lazy_model"] = f"{type(e).__name__}: {e}"

    result["blocked_loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in blocked)
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
