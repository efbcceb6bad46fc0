import io
import zipfile

import numpy as np
import pytest

from l3_core.errors import ModelFileError
from l3_core.model_file import ModelFile, load_model_file, save_model_file


def _model() -> ModelFile:
    return ModelFile(
        "linear-classifier",
        {"labels": ["a", "b"], "bias": 0.5},
        {"coef": np.arange(6, dtype=np.float32).reshape(2, 3), "idx": np.arange(3)},
    )


def test_round_trip(tmp_path):
    p = tmp_path / "m.npz"
    save_model_file(p, _model())
    m = load_model_file(p, kind="linear-classifier")
    assert m.kind == "linear-classifier" and m.meta == {"labels": ["a", "b"], "bias": 0.5}
    np.testing.assert_array_equal(m.array("coef"), _model().arrays["coef"])
    with pytest.raises(ModelFileError, match="has no array 'nope'"):
        m.array("nope", p)


def test_wrong_kind_truncated_and_foreign_files_are_named(tmp_path):
    p = tmp_path / "m.npz"
    save_model_file(p, _model())
    with pytest.raises(
        ModelFileError, match="holds a 'linear-classifier' model, expected 'quantiser'"
    ):
        load_model_file(p, kind="quantiser")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(p.read_bytes()[:40])
    with pytest.raises(ModelFileError, match="cut.npz: not a readable model file"):
        load_model_file(cut)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.ones(2))
    with pytest.raises(ModelFileError, match="no header"):
        load_model_file(plain)
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "absent.npz")


def test_object_arrays_are_refused_on_save_and_never_unpickled_on_load(tmp_path):
    with pytest.raises(ValueError, match="Python objects"):
        save_model_file(
            tmp_path / "o.npz", ModelFile("k", {}, {"o": np.array([{"a": 1}], dtype=object)})
        )
    # A hand-made archive whose member is a pickled object array: loading must not run it.
    p = tmp_path / "evil.npz"
    save_model_file(tmp_path / "g.npz", _model())
    with zipfile.ZipFile(tmp_path / "g.npz") as src, zipfile.ZipFile(p, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        buf = io.BytesIO()
        np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
        dst.writestr("payload.npy", buf.getvalue())
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model_file(p)
