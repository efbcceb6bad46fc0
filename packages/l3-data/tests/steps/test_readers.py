from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from l3_data.document import BadRecord, Document
from l3_data.errors import InputFormatError
from l3_data.steps.readers import InputSpec


def _rows(n):
    return [
        {"id": f"r{i}", "text": f"document number {i}", "url": f"http://e.com/{i}"}
        for i in range(n)
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_reader_reads_plain_gzip_and_zstd_with_metadata(tmp_path, suffix):
    data = "".join(json.dumps(r) + "\n" for r in _rows(5)).encode()
    path = tmp_path / f"in{suffix}"
    if suffix == ".jsonl.gz":
        data = gzip.compress(data)
    elif suffix == ".jsonl.zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    recs = [r for _, r in InputSpec().read(path)]
    assert [r.id for r in recs] == [f"r{i}" for i in range(5)]
    assert recs[3].text == "document number 3" and recs[3].metadata == {"url": "http://e.com/3"}
    assert recs[0].source == "in"


def test_bad_rows_become_rejections_with_file_line_and_reason(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"text": "fine row"}\n'
        b"{not json\n"
        b'{"title": "no text"}\n'
        b'{"text": "caf\xe9 latin-1 byte"}\n'
        b'{"text": "   "}\n'
        b'{"text": 42}\n'
        b"\n"
        b"[1, 2]\n"
        b'{"text": "' + b"x" * 200 + b'"}\n'
    )
    out = [r for _, r in InputSpec(max_chars=100).read(path)]
    assert isinstance(out[0], Document) and out[0].id == "bad.jsonl:1"
    bad = [(r.line, r.reason) for r in out if isinstance(r, BadRecord)]
    assert bad == [
        (2, "malformed_json"),
        (3, "missing_text"),
        (4, "invalid_utf8"),
        (5, "empty"),
        (6, "text_not_string"),
        (8, "not_an_object"),
        (9, "too_large"),
    ]
    assert all(r.path == str(path) for r in out if isinstance(r, BadRecord))


def test_skip_resumes_at_the_same_record_indices(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(10)))
    full = list(InputSpec().read(path))
    assert list(InputSpec().read(path, skip=7)) == full[7:]


def test_parquet_reader_and_missing_column_error(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(6)), path)
    recs = [r for _, r in InputSpec(format="parquet").read(path, skip=2)]
    assert [r.id for r in recs] == ["r2", "r3", "r4", "r5"]
    with pytest.raises(InputFormatError, match="no column 'body'"):
        list(InputSpec(format="parquet", text_key="body").read(path))


def test_text_folder_reader_one_document_per_file(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("alpha text")
    (tmp_path / "docs" / "sub" / "b.md").write_text("beta text")
    (tmp_path / "docs" / "c.bin").write_bytes(b"\x00")
    recs = [r for _, r in InputSpec(format="text").read(tmp_path / "docs")]
    assert [(r.id, r.text) for r in recs] == [
        ("docs/a.txt", "alpha text"),
        ("docs/sub/b.md", "beta text"),
    ]


def test_missing_input_glob_is_an_error_naming_it(tmp_path):
    with pytest.raises(InputFormatError, match="nothing-here"):
        InputSpec(paths=[str(tmp_path / "nothing-here*.jsonl")]).tasks()


def test_file_matched_by_two_patterns_is_one_task(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    spec = InputSpec(paths=[str(tmp_path / "*.jsonl"), str(tmp_path / "a.jsonl")])
    assert spec.tasks() == [tmp_path / "a.jsonl"]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_compressed_input_is_an_error_not_fewer_documents(tmp_path, suffix):
    from l3_core.errors import InputError

    data = "".join(json.dumps(r) + "\n" for r in _rows(2000)).encode()
    packed = (
        gzip.compress(data) if suffix == ".jsonl.gz" else zstandard.ZstdCompressor().compress(data)
    )
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match=r"cut\.jsonl\.(gz|zst): truncated"):
        list(InputSpec().read(path))


def test_bad_row_exclusion_names_file_line_and_reason(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{oops\n')
    ((_, bad),) = [r for r in InputSpec().read(path) if isinstance(r[1], BadRecord)]
    row = bad.to_json()
    assert (row["file"], row["line"], row["reason"]) == (str(path), 2, "malformed_json")
    assert row["detail"].startswith("invalid JSON")
