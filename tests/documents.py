"""Real files of each supported format, made from the seed article inside the tests.

A saved news page wraps the article in ordinary page markup (header, navigation, share
buttons, an ad, a script, a footer); the PDF is written by fpdf2 with the article spread
over pages; the Word file by python-docx.
"""

from __future__ import annotations

import html
from pathlib import Path

SEED = next((Path(__file__).parents[1] / "seeds").glob("*.txt"))
PAGE_FURNITURE = (
    "Sign in to your account",
    "Share on Facebook",
    "Buy one get one free",
    "All rights reserved",
    "trackVisitor",
)


def seed_paragraphs() -> list[str]:
    return [p.strip() for p in SEED.read_text(encoding="utf-8").split("\n") if p.strip()]


def news_page(paragraphs: list[str], title: str, author: str) -> str:
    """A saved article page: the text among navigation, share buttons, an ad and a script."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - The Daily Example</title>
<meta name="author" content="{html.escape(author)}">
<script>function trackVisitor() {{ window.dataLayer = []; }} trackVisitor();</script>
<style>.ad {{ border: 1px solid; }}</style></head>
<body>
<header><a href="/">The Daily Example</a> <a href="/login">Sign in to your account</a></header>
<nav><ul><li><a href="/world">World</a></li><li><a href="/politics">Politics</a></li>
<li><a href="/sports">Sports</a></li><li><a href="/opinion">Opinion</a></li></ul></nav>
<main><article>
<h1>{html.escape(title)}</h1>
<p class="byline">By {html.escape(author)}</p>
<div class="share"><a href="#">Share on Facebook</a> <a href="#">Share on X</a></div>
{body}
</article>
<aside class="ad"><p>Advertisement: Buy one get one free at Example Mart this week only!</p></aside>
</main>
<footer><p>© 2023 The Daily Example. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
</body></html>"""


_LATIN1 = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "—": "-", "–": "-"})


def pdf_file(path: Path, paragraphs: list[str], per_page: int = 3) -> Path:
    """A text PDF with ``per_page`` paragraphs on each page (core font: Latin-1 text)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for first in range(0, len(paragraphs), per_page):
        pdf.add_page()
        for paragraph in paragraphs[first : first + per_page]:
            pdf.multi_cell(0, 6, paragraph.translate(_LATIN1))
            pdf.ln(4)
    pdf.output(str(path))
    return path


def docx_file(path: Path, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path
