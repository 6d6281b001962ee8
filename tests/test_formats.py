"""Each document format, from real files made in the tests; bad files skipped with a reason.

The fast tests run the extractors alone. The slow ones index a folder of mixed formats
into a real Chroma store with the real embedding model and ask the real LLM about them.
"""

from __future__ import annotations

import shutil

import pytest
from documents import PAGE_FURNITURE, SEED, docx_file, news_page, pdf_file, seed_paragraphs

from index.extract import UnreadableDocument, extract
from index.ingest import Source, find_documents, read_passages

TITLE = "North Korea fires missiles before Kim meets Putin"


@pytest.fixture
def paragraphs() -> list[str]:
    return seed_paragraphs()


def test_a_saved_news_page_keeps_the_article_and_drops_the_page_furniture(tmp_path, paragraphs):
    page = tmp_path / "page.html"
    page.write_text(news_page(paragraphs, TITLE, "Staff Reporter"), encoding="utf-8")
    text = extract(page).text
    for furniture in PAGE_FURNITURE:
        assert furniture not in text
    assert text.startswith(TITLE)
    assert "fired from Pyongyang’s Sunan area at 11:43 a.m." in text
    assert "By Staff Reporter" in text  # the byline from the page's metadata


def test_a_pdf_is_read_page_by_page_and_every_passage_knows_its_page(tmp_path, paragraphs):
    pdf = pdf_file(tmp_path / "report.pdf", paragraphs, per_page=3)
    extracted = extract(pdf)
    pages = -(-len(paragraphs) // 3)
    assert len(extracted.page_starts) == pages
    result = read_passages(Source(pdf, "report.pdf"), 420)
    assert not isinstance(result, str), result
    _, _, passages = result
    sunan = next(p for p in passages if "Sunan area" in p.text)
    assert sunan.page == 2  # paragraphs 4-6 are on the second page
    for passage in passages:  # offsets index the extracted text; lines are rejoined
        assert extracted.text[passage.start : passage.end] == passage.text
        assert "\n" not in passage.text
    numbers = [p.page for p in passages]  # in reading order; a PDF's text is kept as extracted,
    assert numbers == sorted(numbers) and set(numbers) == set(range(1, pages + 1))  # sign-ups too


def test_a_word_file_is_read_paragraph_by_paragraph(tmp_path, paragraphs):
    text = extract(docx_file(tmp_path / "memo.docx", paragraphs)).text
    assert text.split("\n\n") == paragraphs


# A made-up page (not the seed): a heading that the next paragraph repeats, a caption shown
# bare and again with its credit, and two calls to action. The article's paragraphs wrap
# over several lines, so the PDF reader can tell its line spacing from a paragraph break.
HARBOR = [
    "Subscribe to our newsletter",
    "Harbor Bridge Repairs",
    "The harbor bridge repairs will cost 12 million dollars, the city council said on "
    "Monday. Work on the deck begins in April, and a firm from Port Ellis will replace the "
    "main cables by the end of the year. Drivers will use the ferry while the bridge is "
    "shut, and extra buses will run every twenty minutes during the morning rush hour, "
    "when most of the traffic crosses.",
    "Crews inspect the bridge cables on Tuesday.",
    "Crews inspect the bridge cables on Tuesday. (Port Ellis Gazette)",
    "The bridge opened in 1962 and carries about 30,000 vehicles a day. Inspectors found "
    "rust on the cables last year, and the council voted 7-2 to pay for the work from its "
    "road budget rather than raise the toll, which has stayed at two dollars since 2015. "
    "Shop owners near the bridge asked the council for help to cover the months of trade "
    "they expect to lose.",
    "The ferry company will add two boats, its manager said. Tickets will cost the same as "
    "the toll, and the first boat will leave the north pier at six in the morning. Cyclists "
    "may take their bikes on board for free, and the company will print a new timetable "
    "for the months of the closure.",
    "Sign up for breaking news alerts",
]


def _passage_texts(path, doc: str) -> list[str]:
    result = read_passages(Source(path, doc), 420)
    assert not isinstance(result, str), result
    return [p.text for p in result[2]]


@pytest.mark.parametrize("suffix", [".pdf", ".docx"])
def test_pdf_and_word_text_is_indexed_as_extracted(tmp_path, suffix):
    # The clutter rules are for plain text: a PDF heading that a later paragraph repeats
    # (and everything else the file says) is kept, one passage a paragraph here.
    path = tmp_path / f"harbor{suffix}"
    (pdf_file if suffix == ".pdf" else docx_file)(path, HARBOR)
    assert _passage_texts(path, path.name) == HARBOR


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_plain_text_is_indexed_whole(tmp_path, suffix):
    """No paragraph is guessed to be clutter: every one is indexed (joined into passages)."""
    path = tmp_path / f"harbor{suffix}"
    path.write_text("\n\n".join(HARBOR), encoding="utf-8")
    indexed = " ".join(_passage_texts(path, path.name))
    assert all(paragraph in indexed for paragraph in HARBOR)


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("notes.xyz", lambda p: p.write_text("text"), "unsupported file type .xyz"),
        ("scan.pdf", "image_only_pdf", "no text layer"),
        ("locked.pdf", "encrypted_pdf", "encrypted PDF"),
        ("broken.pdf", lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj <</Type"), "PDF"),
        ("broken.docx", lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "damaged Word file"),
        ("empty.html", lambda p: p.write_text("<html><body><div></div"), "no article text"),
        ("huge.txt", "huge", "too large"),
        ("latin.txt", lambda p: p.write_bytes("café".encode("latin-1")), "not UTF-8"),
    ],
)
def test_a_bad_file_gets_a_one_line_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    if make == "image_only_pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")  # a drawing, no text
        pdf.output(str(path))
    elif make == "encrypted_pdf":
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(pdf_file(tmp_path / "plain.pdf", ["Some text."])))
        writer.encrypt("secret")
        writer.write(path)
    elif make == "huge":
        with path.open("wb") as handle:  # sparse: 200 MB on paper, nothing on disk
            handle.truncate(200_000_000)
    else:
        make(path)
    with pytest.raises(UnreadableDocument, match=reason) as raised:
        extract(path)
    assert "\n" not in str(raised.value)


def test_a_folder_lists_its_documents_and_says_why_it_skips_the_others(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("Beta.")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / ".hidden.txt").write_text("Hidden.")
    sources, skipped = find_documents([tmp_path])
    assert [s.doc for s in sources] == ["a.txt", "sub/b.md"]
    assert skipped == ["photo.jpg (unsupported file type .jpg)"]


# --- the whole path, real models --------------------------------------------------------
@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory, on_engine):
    """A corpus of a news page, a PDF and a Word file (no plain text), indexed for real."""
    from index.ingest import ingest

    root = tmp_path_factory.mktemp("mixed")
    docs = root / "docs"
    docs.mkdir()
    paragraphs = seed_paragraphs()
    (docs / "korea.html").write_text(news_page(paragraphs, TITLE, "Staff Reporter"))
    pdf_file(docs / "korea-report.pdf", paragraphs, per_page=3)
    docx_file(
        docs / "harbor.docx",
        [
            "Harbor Bridge Repairs",
            "The harbor bridge in Port Ellis closed for repairs on Monday, officials said.",
            "The repairs will cost 12 million dollars and last until March, the city council "
            "announced.",
        ],
    )
    config = on_engine(seeds_dir=docs, store_dir=root / "store")
    report = ingest(config=config)
    return config, report


@pytest.mark.slow
def test_a_mixed_corpus_is_indexed_with_its_extracted_texts_kept(mixed_corpus):
    from index.store import Manifest
    from index.texts import load_text

    config, report = mixed_corpus
    assert report.files == 3 and not report.skipped, report.summary()
    manifest = Manifest.read(config.store_dir)
    assert manifest.docs["korea-report.pdf"]["pages"] >= 6
    for doc in ("korea.html", "korea-report.pdf", "harbor.docx"):
        assert load_text(config.store_dir, doc) is not None


@pytest.mark.slow
def test_answers_from_a_pdf_cite_its_page_and_the_exact_extracted_text(mixed_corpus):
    from index.texts import load_text
    from qa.pipeline import build_pipeline

    config, _ = mixed_corpus
    pipeline = build_pipeline(config)
    answer = pipeline.ask("How much will the harbor bridge repairs cost?")
    assert "12 million" in answer.text, answer.text
    assert answer.citations and answer.citations[0].doc == "harbor.docx"
    answer = pipeline.ask("From which area were the missiles fired?")
    pipeline.close()
    assert "Sunan" in answer.text, answer.text
    for citation in answer.citations:
        text = load_text(config.store_dir, citation.doc)
        assert text.text[citation.start : citation.end] == citation.quote
        if citation.doc.endswith(".pdf"):
            assert citation.page == 2 and citation.source == "korea-report.pdf p. 2"


@pytest.mark.slow
def test_a_bad_file_added_later_is_skipped_and_nothing_indexed_is_lost(mixed_corpus, tmp_path):
    from index.ingest import ingest

    config, first = mixed_corpus
    bad = config.seeds_dir / "scan.pdf"
    bad.write_bytes(b"%PDF-1.7 garbage")
    try:
        report = ingest(config=config)
    finally:
        bad.unlink()
    assert report.passages == first.passages and report.removed == 0
    assert len(report.skipped) == 1 and report.skipped[0].startswith("scan.pdf (")


@pytest.mark.slow
def test_a_removed_document_disappears_from_answers(tmp_path, on_engine):
    from index.ingest import ingest
    from qa.pipeline import build_pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEED, docs / "korea.txt")
    docx_file(
        docs / "harbor.docx",
        ["The harbor bridge in Port Ellis closed for repairs on Monday, officials said."],
    )
    config = on_engine(seeds_dir=docs, store_dir=tmp_path / "store")
    ingest(config=config)
    pipeline = build_pipeline(config)
    question = "When did the harbor bridge in Port Ellis close?"
    assert "Monday" in pipeline.ask(question).text
    (docs / "harbor.docx").unlink()
    ingest(config=config)
    pipeline.refresh()
    answer = pipeline.ask(question)
    assert answer.abstained and "Monday" not in answer.text, answer.text
    assert all(c.doc == "korea.txt" for c in answer.citations)
    pipeline.close()
