import json

import pytest

from l3_core import ModelArgs, Transformer, save_checkpoint
from l3_core.cli import main
from l3_core.tokenizer import llama3_tokenizer_path


def test_presets_lists_every_preset_as_json(capsys):
    assert main(["presets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["preset"] for r in rows} >= {"llama3.1-405b", "llama3-tiny"}


def test_convert_info_and_generate_on_a_tiny_checkpoint(tmp_path, capsys):
    args = ModelArgs.from_preset("llama3-tiny", vocab_size=128256)
    save_checkpoint(Transformer.build(args), tmp_path / "l3")
    assert main(["convert", str(tmp_path / "l3"), str(tmp_path / "hf"), "--format", "hf"]) == 0
    assert main(["info", str(tmp_path / "hf")]) == 0
    assert '"format": "hf"' in capsys.readouterr().out
    assert main(["generate", str(tmp_path / "hf"), "--prompt", "Hello", "--max-new-tokens", "4",
                 "--tokenizer", str(llama3_tokenizer_path())]) == 0
    assert capsys.readouterr().out.startswith("Hello")


def test_errors_are_one_line_messages_not_tracebacks(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "checkpoint directory not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["nonsense"])
