from __future__ import annotations

from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.html import HtmlToText

PAGE = """<html><head><title>Notes</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article><h1>Euler's identity</h1>
<p>The identity <math alttext="e^{i\\pi}+1=0"><mi>e</mi></math> links five constants, and this
paragraph is long enough for the extractor to treat it as the main content of the page.</p>
<p>In MathJax the same is <script type="math/tex">e^{i\\pi} = -1</script> written inline, which
we keep as TeX between dollar signs for the model to learn from.</p>
<p>A program that prints it, kept as a code block with its indentation:</p>
<pre><code>def euler():
    return cmath.exp(1j * cmath.pi) + 1
</code></pre>
</article><footer>Copyright 2024, all rights reserved</footer></body></html>"""


def test_html_extraction_keeps_code_and_math_and_drops_navigation():
    ctx = ChunkContext(unit="u", workdir=None)
    (doc,) = list(HtmlToText().run([Document(PAGE, "p")], ctx))
    assert "$e^{i\\pi}+1=0$" in doc.text
    assert "$e^{i\\pi} = -1$" in doc.text
    assert "def euler():\n    return cmath.exp(1j * cmath.pi) + 1" in doc.text
    assert "About" not in doc.text


def test_page_without_main_text_is_excluded():
    ctx = ChunkContext(unit="u", workdir=None)
    assert list(HtmlToText().run([Document("<html><body></body></html>", "e")], ctx)) == []
    assert ctx.excluded[0]["reason"] == "html_to_text:no_main_text"
