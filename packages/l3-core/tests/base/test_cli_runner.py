import argparse

import pytest

from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_core.errors import ConfigError, InputError
from l3_core.exit_codes import ExitCode


def _cmd(fn):
    def configure(p: argparse.ArgumentParser) -> None:
        add_config_arguments(p)

    return [Command("go", "do it", configure, fn)]


@pytest.mark.parametrize(
    "exc,code,text",
    [
        (ConfigError("run.toml: train.lr: expected float, got 'x'"), ExitCode.CONFIG, "train.lr"),
        (InputError("rows.jsonl:3: invalid JSON"), ExitCode.INPUT, "rows.jsonl:3"),
        (
            PermissionError(13, "Permission denied", "/out/x"),
            ExitCode.IO,
            "/out/x: Permission denied",
        ),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted"),
        (
            ZeroDivisionError("division by zero"),
            ExitCode.INTERNAL,
            "internal error: ZeroDivisionError",
        ),
    ],
)
def test_each_failure_is_one_line_with_its_exit_code(capsys, monkeypatch, exc, code, text):
    monkeypatch.delenv("L3_DEBUG", raising=False)

    def boom(opts):
        raise exc

    assert run_cli("l3-x", _cmd(boom), ["go"]) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("l3-x go: error: ") and text in err and "\n" not in err


def test_config_arguments_and_success(capsys):
    seen = {}

    def ok(opts):
        seen.update(config=opts.config, overrides=opts.overrides)
        return 0

    assert (
        run_cli("l3-x", _cmd(ok), ["go", "--config", "a.toml", "--set", "a.b=1", "--set", "c=x"])
        == 0
    )
    assert seen == {"config": "a.toml", "overrides": ["a.b=1", "c=x"]}


def test_version_comes_from_package_metadata(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("l3-core", _cmd(lambda o: 0), ["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("l3-core ") and out.split()[1][0].isdigit()


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("L3_DEBUG", "1")

    def boom(opts):
        raise ZeroDivisionError("x")

    with pytest.raises(ZeroDivisionError):
        run_cli("l3-x", _cmd(boom), ["go"])
