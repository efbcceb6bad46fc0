import pytest

from l3_core import ModelArgs, PresetError, list_presets

# Published sizes (billions) and FFN dims from the reference implementation.
PUBLISHED = {
    "llama3-8b": (8.03, 14336),
    "llama3-70b": (70.6, 28672),
    "llama3.1-8b": (8.03, 14336),
    "llama3.1-70b": (70.6, 28672),
    "llama3.1-405b": (405.9, 53248),
    "llama3.2-1b": (1.24, 8192),
    "llama3.2-3b": (3.21, 8192),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_presets_match_published_parameter_counts_and_ffn_dims(name):
    args = ModelArgs.from_preset(name)
    billions, ffn = PUBLISHED[name]
    assert round(args.num_params() / 1e9, 2 if billions < 10 else 1) == billions
    assert args.ffn_hidden_dim == ffn


def test_llama_3_1_and_3_2_scale_rope_and_3_2_ties_embeddings():
    assert ModelArgs.from_preset("llama3-8b").rope_scaling is None
    assert ModelArgs.from_preset("llama3.1-8b").rope_scaling.factor == 8
    assert ModelArgs.from_preset("llama3.2-1b").rope_scaling.factor == 32
    assert ModelArgs.from_preset("llama3.2-1b").tie_embeddings
    assert not ModelArgs.from_preset("llama3.1-405b").tie_embeddings


def test_unknown_preset_names_the_choices():
    with pytest.raises(PresetError, match=r"llama3\.1-8b"):
        ModelArgs.from_preset("llama3-9b")
    assert "llama3-tiny" in list_presets()


def test_training_flops_are_6n_plus_attention():
    args = ModelArgs.from_preset("llama3-8b")
    n = args.num_params() - args.vocab_size * args.dim
    attn = 4 * args.n_layers * 8192 * args.dim
    assert args.flops_per_token(8192) == pytest.approx(6 * n + 3 * attn)
    assert args.flops_per_token(8192, training=False) == pytest.approx(2 * n + attn)


def test_inconsistent_shapes_are_refused():
    from l3_core import ConfigError

    with pytest.raises(ConfigError, match="n_kv_heads"):
        ModelArgs(dim=64, n_heads=4, n_kv_heads=3)
