from __future__ import annotations

import pytest

from l3_guard.code_lexer import LEXER_OF_LANGUAGE, lex


@pytest.mark.parametrize("lang", sorted(LEXER_OF_LANGUAGE))
def test_blanking_keeps_length_and_newlines(lang):
    text = 'a = "x // y"; // note\n/* multi\nline */ b = 1 # hash\n<!-- c -->\n'
    src = lex(text, lang)
    assert len(src.code) == len(text)
    assert [i for i, c in enumerate(src.code) if c == "\n"] == [
        i for i, c in enumerate(text) if c == "\n"
    ]


def test_c_comment_is_blanked_but_string_with_slashes_is_kept():
    text = 'x = "http://a"; // gets(b)\n'
    src = lex(text, "c")
    assert "gets" not in src.code and "http://a" in src.code
    assert src.in_string(text.index("http")) and not src.in_string(0)


def test_line_col_is_one_based():
    src = lex("ab\ncd\n", "python")
    assert src.line_col(0) == (1, 1) and src.line_col(4) == (2, 2)


def test_python_triple_quoted_string_spanning_lines_is_a_string():
    text = 'x = """\nos.system(a)\n"""\ny = 1'
    src = lex(text, "python")
    assert src.in_string(text.index("os.system")) and not src.in_string(text.index("y = 1"))
