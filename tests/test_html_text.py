"""The text of an HTML bounce part: what a reader of the rendered mail would see, line by line."""

from __future__ import annotations

from bot.core.bounce.message import html_to_text


def test_block_elements_break_lines_and_entities_become_characters() -> None:
    html = ("<html><body><p>550 5.7.1 <b>blocked</b> &amp; listed</p>"
            "<div>Host&nbsp;mx.example.net</div></body></html>")
    assert html_to_text(html) == "550 5.7.1 blocked & listed\nHost mx.example.net"


def test_style_script_and_head_are_not_text_even_when_they_hold_markup() -> None:
    html = ("<HEAD><title>Undeliverable</title></HEAD><style>p { color: red }</style>"
            "<script>if (a<b) { s = '<div>no</div>' }</script><p>Remote Server returned 550</p>")
    assert html_to_text(html) == "Remote Server returned 550"


def test_a_quoted_angle_bracket_stays_inside_its_tag() -> None:
    html = "<a title='a>b' href=\"x>y\">user@example.com</a> failed"
    assert html_to_text(html) == "user@example.com failed"


def test_comments_and_declarations_vanish_and_broken_markup_keeps_its_text() -> None:
    assert html_to_text("<!DOCTYPE html><!-- note --><p>one<p>two<div>three") == "one\ntwo\nthree"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("") == ""
