import gzip
import json

import pytest
import zstandard

from l3_core.errors import InputError
from l3_core.jsonl import Exclusions, iter_jsonl, read_jsonl, write_jsonl

ROWS = [{"id": i, "text": f"row {i} ü"} for i in range(500)]


def _payload() -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()


@pytest.mark.parametrize(
    "name,pack",
    [
        ("plain.jsonl", lambda b: b),
        ("rows.jsonl.gz", gzip.compress),
        ("rows.jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
        # named .jsonl but gzip inside: read for what it is
        ("mislabelled.jsonl", gzip.compress),
    ],
)
def test_every_container_reads_the_same_rows(tmp_path, name, pack):
    p = tmp_path / name
    p.write_bytes(pack(_payload()))
    assert read_jsonl(p) == ROWS


def test_multi_frame_zstd_reads_every_frame(tmp_path):
    c = zstandard.ZstdCompressor()
    half = len(ROWS) // 2
    a = "".join(json.dumps(r) + "\n" for r in ROWS[:half]).encode()
    b = "".join(json.dumps(r) + "\n" for r in ROWS[half:]).encode()
    p = tmp_path / "two.zst"
    p.write_bytes(c.compress(a) + c.compress(b))
    assert [r["id"] for r in read_jsonl(p)] == list(range(len(ROWS)))


@pytest.mark.parametrize(
    "suffix,pack,word",
    [
        (".gz", gzip.compress, "gzip"),
        (".zst", lambda b: zstandard.ZstdCompressor().compress(b), "zstd"),
    ],
)
def test_truncated_compressed_file_is_an_error_not_fewer_rows(tmp_path, suffix, pack, word):
    data = pack(_payload())
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"cut{suffix}: truncated {word}"):
        read_jsonl(p)


def test_bad_rows_are_named_with_file_line_and_reason(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b'{"a": 1}\n\n[1, 2]\n{"a": \n\xff\xfe\n{"a": 2}\n')
    ex = Exclusions()
    rows = list(iter_jsonl(p, on_bad_row=ex.add))
    assert rows == [(1, {"a": 1}), (6, {"a": 2})]
    assert [(b.line, b.reason.split(" (")[0]) for b in ex.rows] == [
        (3, "expected a JSON object, got list"),
        (4, "invalid JSON"),
        (5, "not UTF-8"),
    ]
    with pytest.raises(InputError, match=r"mixed.jsonl:3: expected a JSON object"):
        read_jsonl(p)
    out = tmp_path / "excluded.jsonl"
    assert ex.write(out) == 3
    assert read_jsonl(out)[0] == {
        "file": str(p),
        "line": 3,
        "reason": "expected a JSON object, got list",
    }


def test_missing_file_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        read_jsonl(tmp_path)


def test_write_jsonl_round_trips(tmp_path):
    p = tmp_path / "sub" / "out.jsonl"
    assert write_jsonl(p, ROWS) == len(ROWS)
    assert read_jsonl(p) == ROWS
