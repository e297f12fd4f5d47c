"""The text of an HTML bounce part: what a reader of the rendered mail would see, line by line."""

from __future__ import annotations

import random
import re
from html import unescape

from bot.core.bounce import mime
from bot.core.bounce.message import html_to_text, normalise_newlines
from tests.corpus import CORPUS, need_shared


def test_block_elements_break_lines_and_entities_become_characters() -> None:
    html = ("<html><body><p>550 5.7.1 <b>blocked</b> &amp; listed</p>"
            "<div>Host&nbsp;mx.example.net</div></body></html>")
    assert html_to_text(html) == "550 5.7.1 blocked & listed\nHost mx.example.net"


def test_style_script_and_head_are_not_text_even_when_they_hold_markup() -> None:
    html = ("<HEAD><title>Undeliverable</title></HEAD><style>p { color: red }</style>"
            "<script>if (a<b) { s = '<div>no</div>' }</script><p>Remote Server returned 550</p>")
    assert html_to_text(html) == "Remote Server returned 550"


def test_element_names_are_read_whatever_their_case_and_only_as_they_lower() -> None:
    html = "<Html><hEaD><TITLE>t</TITLE></HeAd><BODY>one<Br>two<dIV>three<lİ>four<TaBlE>five</BODY>"
    assert html_to_text(html) == "one\ntwo\nthreefour\nfive"  # "lİ" lowers to no "li"
    assert html_to_text("<STYLE>p { }</STYLE><sCrIpT>x</ScRiPt>kept") == "kept"


def test_a_quoted_angle_bracket_stays_inside_its_tag() -> None:
    html = "<a title='a>b' href=\"x>y\">user@example.com</a> failed"
    assert html_to_text(html) == "user@example.com failed"


def test_comments_and_declarations_vanish_and_broken_markup_keeps_its_text() -> None:
    assert html_to_text("<!DOCTYPE html><!-- note --><p>one<p>two<div>three") == "one\ntwo\nthree"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("") == ""


_REFERENCE_MARKUP = re.compile(
    r"""<!--.*?(?:-->|\Z)|<![^>]*>|<\?[^>]*>|<(/?)([a-zA-Z][^\s/>]*)(?:[^>"']|"[^"]*"|'[^']*')*>""",
    re.S,
)
_REFERENCE_CDATA_END = {name: re.compile(rf"</{name}(?=[\s/>])", re.I) for name in ("script", "style")}


def _tag_by_tag(html: str) -> str:
    """The reading spelled out: search for the next piece of markup from where the last ended,
    with an attribute pattern that steps character by character, and tidy line by line."""
    out: list[str] = []
    hidden = 0
    pos = 0
    while pos < len(html):
        tag = _REFERENCE_MARKUP.search(html, pos)
        if tag is None:
            break
        if not hidden and tag.start() > pos:
            out.append(html[pos:tag.start()])
        pos = tag.end()
        if tag.group(2) is None:
            continue
        name = tag.group(2).lower()
        if name in ("style", "script", "head"):
            if tag.group(1):
                hidden = max(0, hidden - 1)
            else:
                hidden += 1
                if name in _REFERENCE_CDATA_END:
                    end = _REFERENCE_CDATA_END[name].search(html, pos)
                    pos = end.start() if end else len(html)
        elif name in ("br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4"):
            out.append("\n")
    if not hidden and pos < len(html):
        out.append(html[pos:])
    lines = [" ".join(line.split()) for line in unescape("".join(out)).splitlines()]
    return "\n".join(line for line in lines if line)


def test_the_text_of_corpus_html_parts_and_mangled_ones_is_read_as_tag_by_tag() -> None:
    need_shared()
    htmls = []
    for path in sorted((CORPUS / "sisimai").rglob("*.eml")):
        for part in mime.parse(normalise_newlines(path.read_bytes())).walk():
            if part.get_content_type() == "text/html":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    htmls.append(payload.decode("utf-8", "replace"))
    assert len(htmls) > 20
    rng = random.Random(7)
    pieces = ['"', "'", "<", ">", "<!--", "-->", "<style>", "</style >", "<script a='>'>", "</", "<br/>",
              "<HEAD>", "</head>", "&amp;", "<a b=\"c>"]
    for html in htmls:
        assert html_to_text(html) == _tag_by_tag(html)
        for _ in range(20):
            mangled = list(html)
            for _ in range(rng.randint(1, 4)):
                mangled.insert(rng.randrange(len(mangled) + 1), rng.choice(pieces))
            text = "".join(mangled)
            assert html_to_text(text) == _tag_by_tag(text)
