from __future__ import annotations

import pytest

from l3_data.document import Document
from l3_data.errors import PipelineConfigError
from l3_data.pipeline import Pipeline
from l3_data.steps.base import ChunkContext
from l3_data.steps.url_filter import BlockList, UrlBlocklist


def _blocklist(*lines: str) -> BlockList:
    bl = BlockList()
    for n, line in enumerate(lines, 1):
        bl.add(line, f"list.txt:{n}")
    return bl


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://EXAMPLE.com:8080/a",
        "https://news.example.com/story?id=1",
        "https://a.b.example.com.",
        "example.com/path",
        "//cdn.example.com/x.js",
    ],
)
def test_a_domain_blocks_itself_and_its_subdomains(url):
    rule = _blocklist("# adult sites", "example.com").match(url)
    assert rule is not None and rule.origin == "list.txt:2" and rule.entry == "example.com"


@pytest.mark.parametrize(
    "url",
    ["https://badexample.com/", "https://example.com.evil.org/", "https://example.co/", ""],
)
def test_a_domain_does_not_block_lookalike_hosts(url):
    assert _blocklist("example.com").match(url) is None


def test_wildcard_and_dot_prefixes_mean_the_domain_and_its_subdomains():
    bl = _blocklist("*.spam.net", ".ads.org  # trailing comment")
    assert bl.match("https://spam.net/") and bl.match("https://x.ads.org/")
    assert len(bl) == 2 and bl.match("https://myspam.net/") is None


def test_patterns_match_the_url_without_its_scheme():
    bl = _blocklist("site.org/ads/*", "*.tracker.*/pixel*")
    assert bl.match("https://site.org/ads/banner.png").entry == "site.org/ads/*"
    assert bl.match("http://eu.tracker.io/pixel.gif").entry == "*.tracker.*/pixel*"
    assert bl.match("https://site.org/news/1") is None


def _step(tmp_path, **kw):
    (tmp_path / "domains.txt").write_text("example.com\n")
    (tmp_path / "paths.txt").write_text("# paths\nsite.org/ads/*\n")
    step = UrlBlocklist(
        block_lists=[str(tmp_path / "domains.txt"), str(tmp_path / "paths.txt")], **kw
    )
    step.label = "01.url_blocklist"
    step.setup()
    return step


def test_step_rejects_blocked_documents_with_the_rule_that_blocked_them(tmp_path):
    docs = [
        Document("a", "1", metadata={"url": "https://www.example.com/x"}),
        Document("b", "2", metadata={"url": "https://site.org/ads/1"}),
        Document("c", "3", metadata={"url": "https://site.org/news/1"}),
        Document("d", "4"),
    ]
    ctx = ChunkContext(unit="u", workdir=tmp_path)
    kept = list(_step(tmp_path).run(docs, ctx))
    assert [d.id for d in kept] == ["3", "4"]
    got = {e["id"]: (e["reason"], e["blocked_by"]) for e in ctx.excluded}
    assert got == {
        "1": ("url_blocklist:blocked_domain", "domains.txt:1 example.com"),
        "2": ("url_blocklist:blocked_pattern", "paths.txt:2 site.org/ads/*"),
    }


def test_documents_without_url_can_be_rejected(tmp_path):
    ctx = ChunkContext(unit="u", workdir=tmp_path)
    assert list(_step(tmp_path, missing="reject").run([Document("d", "4")], ctx)) == []
    assert ctx.excluded[0]["reason"] == "url_blocklist:no_url"


def test_pipeline_refuses_a_missing_list_and_an_empty_option(tmp_path):
    base = {"pipeline": {"workdir": str(tmp_path / "w")}, "input": {"paths": ["x.jsonl"]}}
    with pytest.raises(PipelineConfigError, match="block_lists = \\[\\]"):
        Pipeline.from_dict({**base, "steps": [{"type": "url_blocklist"}]})
    step = {"type": "url_blocklist", "block_lists": [str(tmp_path / "nope.txt")]}
    with pytest.raises(PipelineConfigError, match="block_lists: no such file .*nope.txt"):
        Pipeline.from_dict({**base, "steps": [step]})
    with pytest.raises(PipelineConfigError, match="nope.txt not found"):
        UrlBlocklist(block_lists=[str(tmp_path / "nope.txt")]).setup()


def test_block_urls_command_keeps_unblocked_rows_and_names_the_rule_per_removed_row(tmp_path):
    import json

    from l3_data.cli import main

    (tmp_path / "block.txt").write_text("example.com\nsite.org/ads/*\n")
    rows = [
        {"id": 1, "url": "https://news.example.com/a", "text": "x"},
        {"id": 2, "url": "https://site.org/ads/9", "text": "y"},
        {"id": 3, "url": "https://other.org/", "text": "z"},
        {"id": 4, "text": "no url"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    argv = ["block-urls", str(tmp_path / "in.jsonl"), str(out)]
    assert main([*argv, "--block-list", str(tmp_path / "block.txt")]) == 0
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [3, 4]
    removed = [
        json.loads(x) for x in (tmp_path / "out.jsonl.removed.jsonl").read_text().splitlines()
    ]
    assert [(r["line"], r["reason"]) for r in removed] == [
        (1, "block.txt:1 example.com"),
        (2, "block.txt:2 site.org/ads/*"),
    ]
    assert main([*argv, "--block-list", str(tmp_path / "nope.txt")]) == 3
