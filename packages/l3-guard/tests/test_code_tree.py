"""Syntax rules (tree-sitter): each rule flags its own insecure example and passes its secure
one; taint follows assignments and stops at sanitisers; bad queries fail at load; without a
grammar the text rules of the same id stay in force."""

from __future__ import annotations

import pytest

pytest.importorskip("tree_sitter", reason="syntax rules need the codeshield-ts extra")

from l3_guard import code_tree
from l3_guard.code_shield import CodeShield, Rule
from l3_guard.errors import RuleFileError

SHIELD = CodeShield()


def _own_syntax_rules() -> list[tuple[str, Rule]]:
    return [
        (lang, r)
        for lang in SHIELD.languages
        if code_tree.available(lang)
        for r in SHIELD.rules(lang)
        if r.is_syntax_rule and r.origin == f"{lang}.toml"
    ]


SYNTAX_RULES = _own_syntax_rules()


def test_the_grammar_wheels_of_the_extra_load_for_every_language():
    assert [lang for lang in SHIELD.languages if not code_tree.available(lang)] == []


@pytest.mark.parametrize(("lang", "rule"), SYNTAX_RULES, ids=lambda x: getattr(x, "id", x))
def test_syntax_rule_flags_its_insecure_example(lang, rule):
    assert rule.id in {i.rule_id for i in SHIELD.scan(rule.insecure_example, lang).issues}


@pytest.mark.parametrize(("lang", "rule"), SYNTAX_RULES, ids=lambda x: getattr(x, "id", x))
def test_syntax_rule_passes_its_secure_example(lang, rule):
    assert rule.id not in {i.rule_id for i in SHIELD.scan(rule.secure_example, lang).issues}


def test_syntax_rules_supersede_text_rules_of_the_same_id():
    ids = [(r.id, r.engine) for r in SHIELD.rules("python") if r.id == "cursor-execute-sqli"]
    assert ids == [("cursor-execute-sqli", "taint")]


def test_taint_follows_a_chain_of_assignments_and_reports_the_sink_line():
    code = 'a = "SELECT * FROM t WHERE id = " + uid\nb = a\nc = b\ncur.execute(c)\n'
    issues = [i for i in SHIELD.scan(code, "python").issues if i.rule_id == "cursor-execute-sqli"]
    assert [(i.line, i.column) for i in issues] == [(4, 1)]


def test_taint_stops_at_a_sanitiser():
    tainted = "<?php\n$id = $_GET['id'];\nmysqli_query($c, \"SELECT * FROM t WHERE id=\" . $id);"
    clean = tainted.replace("$_GET['id']", "intval($_GET['id'])")
    assert "sql-injection" in {i.rule_id for i in SHIELD.scan(tainted, "php").issues}
    assert "sql-injection" not in {i.rule_id for i in SHIELD.scan(clean, "php").issues}


def test_php_is_parsed_with_and_without_its_open_tag():
    for code in ("system($_GET['c']);", "<?php\nsystem($_GET['c']);"):
        assert "os-command-injection" in {i.rule_id for i in SHIELD.scan(code, "php").issues}


def test_a_call_inside_a_string_or_comment_is_not_code():
    code = 's = "os.system(cmd)"\n# os.system(cmd)\n'
    assert SHIELD.scan(code, "python").issues == []


def test_multiline_call_with_keyword_in_any_position_is_found():
    code = "subprocess.Popen(\n    cmd,\n    stdout=PIPE,\n    shell=True,\n)\n"
    issues = SHIELD.scan(code, "python").issues
    assert [(i.rule_id, i.line) for i in issues] == [("insecure-subprocess-using-shell", 1)]


def test_invalid_query_names_file_rule_and_language(tmp_path):
    (tmp_path / "python.toml").write_text(
        '[[rule]]\nid = "q"\nseverity = "warning"\ndescription = "d"\nengine = "query"\n'
        'query = "((call) @at"\ninsecure_example = "x"\nsecure_example = "y"\n'
    )
    with pytest.raises(RuleFileError, match=r"python\.toml, rule q: invalid tree-sitter query"):
        CodeShield(tmp_path)


def test_syntax_rule_without_its_examples_is_refused(tmp_path):
    (tmp_path / "python.toml").write_text(
        '[[rule]]\nid = "q"\nseverity = "warning"\ndescription = "d"\nengine = "query"\n'
        'query = "(call) @at"\n'
    )
    with pytest.raises(RuleFileError, match=r"\(q\).*insecure_example"):
        CodeShield(tmp_path)


def test_without_a_grammar_the_text_rules_stay(monkeypatch):
    monkeypatch.setattr(code_tree, "available", lambda language: False)
    shield = CodeShield()
    engines = {r.engine for r in shield.rules("python") if r.id == "cursor-execute-sqli"}
    assert engines == {"regex"}
    code = 'cursor.execute(f"SELECT * FROM t WHERE id = {uid}")'
    assert shield.scan(code, "python").is_insecure
