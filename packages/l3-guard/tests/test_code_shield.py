"""Code Shield: rules fire on code, not on comments or strings; positions, treatments, errors."""

from __future__ import annotations

import time

import pytest

from l3_guard.code_shield import CodeShield, language_of_path, load_rules, normalise_language
from l3_guard.errors import GuardInputError, RuleFileError


@pytest.fixture(scope="module")
def shield() -> CodeShield:
    return CodeShield()


def rule_ids(shield: CodeShield, code: str, lang: str) -> set[str]:
    return {i.rule_id for i in shield.scan(code, lang).issues}


# One insecure snippet per language, with the rule it must trigger, and a safe twin.
CASES = [
    ("c", "strcpy(dest, src);", "bugprone-strcpy", "strncpy(dest, src, sizeof dest);"),
    (
        "cpp",
        "std::mt19937 gen(42);",
        "fixed-seed-prng-usage",
        "std::mt19937 gen(std::random_device{}());",
    ),
    (
        "java",
        'Cipher c = Cipher.getInstance("DES/CBC/PKCS5Padding");',
        "deprecated-crypto-algorithms-usage",
        'Cipher c = Cipher.getInstance("AES/GCM/NoPadding");',
    ),
    ("javascript", "eval(userInput);", "eval-with-expression", "JSON.parse(userInput);"),
    ("php", "echo $_GET['name'];", "xss-in-echo-print", "echo htmlspecialchars($_GET['name']);"),
    (
        "python",
        "subprocess.run(cmd, shell=True)",
        "insecure-subprocess-using-shell",
        "subprocess.run(['ls', path])",
    ),
    (
        "rust",
        'let out = Command::new("sh").arg("-c").arg(cmd).output();',
        "RUST-R-002",
        'let out = Command::new("ls").arg(dir).output();',
    ),
    (
        "csharp",
        "var hasher = MD5.Create();",
        "crypto-weak-hashing-function",
        "var hasher = SHA256.Create();",
    ),
    ("swift", "let webView = UIWebView()", "SWIFT-R-005", "let webView = WKWebView()"),
    (
        "objective_c",
        "CC_MD5(data.bytes, len, digest);",
        "OBJC-R-003",
        "CC_SHA256(data.bytes, len, digest);",
    ),
    ("ruby", 'Open3.popen3("ls #{dir}")', "RUBY-R-001", "Dir.children(dir)"),
    (
        "xml",
        '<application android:debuggable="true">',
        "XML-R-001",
        '<application android:debuggable="false">',
    ),
]


@pytest.mark.parametrize(("lang", "bad", "rule", "good"), CASES, ids=[c[0] for c in CASES])
def test_each_language_flags_insecure_code_and_passes_its_safe_twin(shield, lang, bad, rule, good):
    assert rule in rule_ids(shield, bad, lang)
    res = shield.scan(good, lang)
    assert not res.is_insecure, res.issues
    assert res.treatment == "IGNORE"


@pytest.mark.parametrize(
    ("lang", "code"),
    [
        ("c", "// strcpy(dest, src);\n/* gets(buf); */"),
        ("c", 'printf("do not call strcpy(a, b) here");'),
        ("python", "# os.system(cmd)\nmsg = 'os.system(cmd) is dangerous'"),
        ("python", '"""\nyaml.load(data)\n"""'),
        ("javascript", "// eval(x)\nconst s = `eval(${x})`;"),
        ("java", '/* new ObjectInputStream(in) */ String s = "new ObjectInputStream(in)";'),
        ("php", "# system($_GET['x']);\n$s = 'shell_exec($_GET[1])';"),
        ("ruby", "# Open3.popen3('ls')\n=begin\nMarshal.load(x)\n=end"),
        ("rust", '// unsafe { x() }\nlet s = r#"unsafe { y() }"#;'),
        ("xml", '<!-- android:debuggable="true" -->'),
    ],
)
def test_comments_and_strings_do_not_trigger_code_rules(shield, lang, code):
    res = shield.scan(code, lang)
    assert not res.is_insecure, res.issues


def test_secrets_are_found_inside_strings():
    shield = CodeShield()
    res = shield.scan('token = "ghp_' + "a" * 36 + '"', "python")
    assert "ALL-R-010" in {i.rule_id for i in res.issues}


def test_issue_carries_rule_id_cwe_severity_line_column_and_treatment(shield):
    code = "int main() {\n    char buf[8];\n    gets(buf);\n}\n"
    (issue,) = [i for i in shield.scan(code, "c").issues if i.rule_id == "bugprone-gets"]
    assert (issue.line, issue.column) == (3, 5)
    assert issue.cwe_id == "CWE-242" and issue.severity == "error" and issue.treatment == "BLOCK"


def test_scan_treatment_is_the_worst_issue_treatment(shield):
    assert shield.scan("strcat(a, b);", "c").treatment == "WARN"
    assert shield.scan("strcat(a, b); gets(a);", "c").treatment == "BLOCK"


def test_treatment_override_ignore_drops_rule_from_the_verdict():
    shield = CodeShield(treatment_overrides={"bugprone-strcat": "IGNORE"})
    res = shield.scan("strcat(a, b);", "c")
    assert res.issues and not res.is_insecure and res.treatment == "IGNORE"


def test_backreference_rule_finds_memcpy_into_stack_buffer_and_reports_the_call(shield):
    code = "void f(int n) {\n  char buf[100];\n  memcpy(buf, src, n);\n}"
    (issue,) = [i for i in shield.scan(code, "c").issues if i.rule_id == "write-to-stack-buffer"]
    assert issue.line == 3 and issue.column == 3


def test_unless_file_suppresses_xxe_when_doctype_is_disabled(shield):
    bad = "DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();"
    good = bad + '\ndbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);'
    assert "xxe-insecure-document-builder" in rule_ids(shield, bad, "java")
    assert "xxe-insecure-document-builder" not in rule_ids(shield, good, "java")


def test_cpp_and_objective_c_include_the_c_rules(shield):
    assert "bugprone-strcpy" in rule_ids(shield, "strcpy(a, b);", "cpp")
    assert "bugprone-strcpy" in rule_ids(shield, "strcpy(a, b);", "objective_c")


def test_every_language_has_rules_and_every_rule_has_a_cwe_or_none():
    rules = load_rules()
    assert set(rules) == {
        "c",
        "cpp",
        "csharp",
        "java",
        "javascript",
        "objective_c",
        "php",
        "python",
        "ruby",
        "rust",
        "swift",
        "xml",
    }
    for lang, rs in rules.items():
        assert len(rs) >= 8, lang


def test_language_aliases_and_suffixes():
    assert normalise_language("C++") == "cpp" and normalise_language("js") == "javascript"
    assert language_of_path("a/b/Main.java") == "java" and language_of_path("x.mm") == "objective_c"
    with pytest.raises(GuardInputError, match="suffix"):
        language_of_path("notes.txt")


@pytest.mark.parametrize(
    ("code", "lang", "match"),
    [
        ("x = 1", "cobol", "unknown language"),
        (b"\x00\x01binary", "c", "binary"),
        (b"\xff\xfe bad utf8", "c", "UTF-8"),
        (123, "c", "str or bytes"),
    ],
)
def test_bad_input_is_a_clear_error_and_scan_safe_blocks_with_it(shield, code, lang, match):
    with pytest.raises(GuardInputError, match=match):
        shield.scan(code, lang)
    res = shield.scan_safe(code, lang)
    assert (
        res.is_insecure
        and res.treatment == "BLOCK"
        and match.split()[0].lower() in res.error.lower()
    )


def test_gigantic_input_is_refused_not_truncated():
    shield = CodeShield(max_chars=1000)
    with pytest.raises(GuardInputError, match="over the limit"):
        shield.scan("a = 1\n" * 1000, "python")


def test_large_file_is_scanned_fully_and_quickly(shield):
    body = "def f(x):\n    return x + 1  # fine\n" * 20_000  # ~700 KB
    code = body + "os.system(cmd)\n"
    t = time.perf_counter()
    res = shield.scan(code, "python")
    elapsed = time.perf_counter() - t
    (issue,) = [i for i in res.issues if i.rule_id == "insecure-os-system-use"]
    assert issue.line == 40_001
    assert elapsed < 30  # a generous bound: only catches catastrophic backtracking


def test_large_php_file_with_data_flow_rules_is_scanned_fully(shield):
    block = "$a = $_GET['x'];\n$b = strlen($a);\necho 'ok';\n"
    code = "<?php\n" + block * 10_000 + "system($a);\n"
    t = time.perf_counter()
    res = shield.scan(code, "php")
    elapsed = time.perf_counter() - t
    lines = {i.line for i in res.issues if i.rule_id == "os-command-injection"}
    assert lines == {30_002}
    assert elapsed < 60  # generous: only catches quadratic blow-up


def test_batch_reports_bad_rows_without_stopping(shield):
    out = shield.scan_batch([("gets(b);", "c"), ("x", "klingon"), ("print(1)", "python")])
    assert [r.is_insecure for r in out] == [True, True, False]
    assert out[1].error and "klingon" in out[1].error


def test_malformed_rule_file_names_file_rule_and_field(tmp_path):
    (tmp_path / "python.toml").write_text(
        '[[rule]]\nid = "x"\nseverity = "fatal"\ndescription = "d"\npattern = "a"\n'
    )
    with pytest.raises(RuleFileError, match=r"python\.toml.*\(x\).*severity"):
        CodeShield(tmp_path)
    (tmp_path / "python.toml").write_text(
        '[[rule]]\nid = "y"\nseverity = "error"\ndescription = "d"\npattern = "("\n'
    )
    with pytest.raises(RuleFileError, match="invalid regular expression"):
        CodeShield(tmp_path)


def test_custom_rules_directory_is_data_only(tmp_path):
    (tmp_path / "python.toml").write_text(
        '[[rule]]\nid = "no-print"\ncwe = "CWE-1"\nseverity = "warning"\ndescription = "no print"\n'
        "pattern = '''\\bprint\\s*\\('''\n"
    )
    shield = CodeShield(tmp_path)
    res = shield.scan("print('hi')  # print(", "python")
    assert [(i.rule_id, i.column) for i in res.issues] == [("no-print", 1)]
