"""The commands that need the model extra: convert, info and generate on a tiny checkpoint."""

from l3_core import ModelArgs, Transformer, save_checkpoint
from l3_core.cli import main
from l3_core.exit_codes import ExitCode
from l3_core.tokenizer import llama3_tokenizer_path


def test_convert_info_and_generate_on_a_tiny_checkpoint(tmp_path, capsys):
    args = ModelArgs.from_preset("llama3-tiny", vocab_size=128256)
    save_checkpoint(Transformer.build(args), tmp_path / "l3")
    assert main(["convert", str(tmp_path / "l3"), str(tmp_path / "hf"), "--format", "hf"]) == 0
    assert main(["info", str(tmp_path / "hf")]) == 0
    assert '"format": "hf"' in capsys.readouterr().out
    assert (
        main(
            [
                "generate",
                str(tmp_path / "hf"),
                "--prompt",
                "Hello",
                "--max-new-tokens",
                "4",
                "--tokenizer",
                str(llama3_tokenizer_path()),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("Hello")


def test_a_missing_checkpoint_is_one_line_with_the_model_exit_code(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == ExitCode.MODEL
    err = capsys.readouterr().err
    assert err == f"l3-core info: error: {tmp_path / 'missing'}: checkpoint directory not found\n"
