from dataclasses import dataclass, field

import pytest

from l3_core.config import dump_toml, load_config
from l3_core.errors import ConfigError


@dataclass
class Opt:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)


@dataclass
class Run:
    name: str = "x"
    steps: int = 10
    opt: Opt = field(default_factory=Opt)
    mode: str | None = None


def test_toml_and_overrides_build_nested_dataclasses(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('name = "a"\n[opt]\nlr = 3\n')
    cfg = load_config(Run, path, ["steps=7", "opt.betas=[0.8, 0.9]", "mode=fast"])
    assert cfg == Run(name="a", steps=7, opt=Opt(lr=3.0, betas=(0.8, 0.9)), mode="fast")


def test_unknown_key_names_its_path_and_the_valid_keys(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[opt]\nrl = 1\n")
    with pytest.raises(
        ConfigError, match=r"run.toml: unknown config key opt.rl; valid keys here: betas, lr"
    ):
        load_config(Run, path)


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"steps: expected int, got 'ten'"):
        load_config(Run, None, ["steps=ten"])


def test_malformed_toml_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("x = = 1")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(Run, bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Run, tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(Run, None, ["steps"])


def test_dump_toml_reads_back_equal_with_unset_options_left_out(tmp_path):
    cfg = Run(name="b", steps=3, opt=Opt(lr=0.1 + 0.2, betas=(0.5, 0.25)), mode=None)
    text = dump_toml(cfg)
    assert "mode" not in text
    path = tmp_path / "run.toml"
    path.write_text(text)
    assert load_config(Run, path) == cfg


@dataclass
class Shifty:
    width: int | None = 3  # None would read back as 3
    table: dict[str, int | None] = field(default_factory=dict)


def test_a_none_that_would_not_read_back_is_refused_with_its_key():
    with pytest.raises(
        ConfigError, match=r"width = None cannot be written as TOML .* read back as 3"
    ):
        dump_toml(Shifty(width=None))
    with pytest.raises(ConfigError, match="Shifty: cannot be written as TOML"):
        dump_toml(Shifty(table={"a": None}))
