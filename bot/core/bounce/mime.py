"""A faster stand-in for `email.message_from_bytes(data, policy=compat32)`, same tree.

The stdlib's FeedParser is written for data arriving in pieces: a generator per part, a line
deque, and the content type re-parsed at each step. Bounces arrive whole, so this module walks
the same algorithm over a list of lines in one pass and builds the very same
`email.message.Message` tree (headers, payload strings, preamble, epilogue, default types), which
the rest of the reader then handles with the stdlib's own methods (decoding, parameters,
charsets). tests/test_mime.py checks the trees are identical over the corpus and edge cases;
anything this module does not model (carriage returns, a unix "From " line inside the headers,
a boundary given in RFC 2231 pieces) goes to the stdlib parser instead.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import operator
import re
from collections.abc import Callable

_POLICY = email.policy.compat32
_HEADER_RE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")
_NL_EOL = re.compile(r"(\r\n|\r|\n)\Z")
_NL_BOL = re.compile(r"(\r\n|\r|\n)")
_NL = re.compile(r"\r\n|\r|\n")

Matcher = Callable[[str], object]


class _Message(email.message.Message):
    """A compat32 Message that works out its content type once (its headers never change here).

    _Quick, reading the fields, notes what it finds of the first Content-Type field: its type
    ("" when there is no such field, which leaves the default type) and its value when that is
    plain ASCII, which is what get("content-type") would hand back (compat32 returns such a
    value as it is).
    """

    _ctype: str | None = None
    _ctype_value: str | None = None
    _ctype_known = False  # _ctype_value is the answer of get("content-type")

    def get_content_type(self) -> str:
        ctype = self._ctype
        if ctype is None:
            ctype = self._ctype = super().get_content_type()
        elif not ctype:
            return self.get_default_type()
        return ctype


def content_type_value(msg: email.message.Message) -> object:
    """msg.get("content-type"), without another scan of the fields where _Quick noted it."""
    if isinstance(msg, _Message) and msg._ctype_known:
        return msg._ctype_value
    return field(msg, "content-type")


def field(msg: email.message.Message, name: str, default: object = None) -> object:
    """msg.get(name, default) for a lower-case `name`: the first such field's value, which
    compat32 hands back as it is when it is plain ASCII (the policy is asked only for other
    values). Field names here are ASCII, and no character lowers to several ASCII ones, so only
    a name of the same length can lower to `name`: the others are not lowered."""
    size = len(name)
    for key, value in msg._headers:  # type: ignore[attr-defined]
        if len(key) == size and key.lower() == name:
            if isinstance(value, str) and value.isascii():
                return value
            return msg.policy.header_fetch_parse(key, value)
    return default


_BOUNDARY = re.compile(r';\s*boundary\s*=\s*("[^"]*"|[^\s;"]+)\s*(?:;|$)', re.IGNORECASE)


def _simple_boundary(content_type: str) -> str | None:
    """get_boundary()'s answer for a plain `boundary=` parameter, without its parameter parser.

    Only for one boundary parameter, no backslash: the stdlib unquotes such a value twice (once
    reading the parameters, once "collapsing" it) and strips trailing blanks; None otherwise.
    """
    if "\\" in content_type or content_type.lower().count("boundary") != 1:
        return None
    match = _BOUNDARY.search(content_type)
    if not match:
        return None
    value = match.group(1)
    if value[0] not in '"<':
        return value.rstrip()  # unquote() changes only a value that starts with a quote or "<"
    return email.utils.unquote(email.utils.unquote(value)).rstrip()


class Unsupported(Exception):
    """Input this parser does not model; the caller uses the stdlib parser."""


def message_from_bytes(data: bytes) -> email.message.Message:
    """The tree `email.message_from_bytes(data, policy=compat32)` builds, built faster."""
    if b"\r" in data:
        raise Unsupported("carriage returns")
    text = data.decode("ascii", "surrogateescape")
    quick = _Quick(text).parse()
    return quick if quick is not None else _Parser(text).parse()


def stdlib_message_from_bytes(data: bytes) -> email.message.Message:
    return email.message_from_bytes(data, policy=_POLICY)


def parse(data: bytes) -> email.message.Message:
    """The fast parser, or the stdlib's where the input is outside what it models."""
    try:
        return message_from_bytes(data)
    except Unsupported:
        return stdlib_message_from_bytes(data)


class _Parser:
    def __init__(self, text: str) -> None:
        # FeedParser splits at line feeds only (and at carriage returns, which never get here).
        parts = text.split("\n")
        self.lines = [p + "\n" for p in parts[:-1]]
        if parts[-1]:
            self.lines.append(parts[-1])
        self.pos = 0
        self.pending_empty = 0  # FeedParser can push back an empty line; it then reads as EOF once
        self.eof: list[Matcher] = []
        self.last: email.message.Message | None = None  # FeedParser's _last: the newest message

    # -- the BufferedSubFile part: lines, false EOFs at any enclosing boundary ------------------
    def readline(self) -> str:
        if self.pending_empty:
            self.pending_empty -= 1
            return ""
        if self.pos >= len(self.lines):
            return ""
        line = self.lines[self.pos]
        # Every false EOF is a boundary ("--…") or a blank line: other lines need no check.
        if self.eof and line[0] in "-\n" and any(at_eof(line) for at_eof in self.eof):
            return ""
        self.pos += 1
        return line

    def unreadline(self, line: str) -> None:
        if line == "":
            self.pending_empty += 1
        else:
            self.pos -= 1

    def rest(self) -> list[str]:
        """Every line up to the (false) EOF."""
        if self.pending_empty:
            self.pending_empty -= 1
            return []
        start = self.pos
        lines = self.lines
        end = len(lines)
        if self.eof:
            matchers = self.eof
            for i in range(start, end):
                line = lines[i]
                if line[0] in "-\n" and any(m(line) for m in matchers):
                    end = i
                    break
        self.pos = end
        return lines[start:end]

    # -- the FeedParser part ------------------------------------------------------------------
    def parse(self) -> email.message.Message:
        root = _Message(_POLICY)
        self.last = root
        self._parsegen(root)
        return root

    def _new(self, parent: email.message.Message, parent_type: str) -> email.message.Message:
        msg = _Message(_POLICY)
        if parent_type == "multipart/digest":
            msg.set_default_type("message/rfc822")
        parent.attach(msg)
        self.last = msg
        return msg

    def _parsegen(self, cur: email.message.Message) -> None:
        headers: list[str] = []
        if self.pending_empty:
            self.pending_empty -= 1
        else:
            lines, eof, header_re = self.lines, self.eof, _HEADER_RE.match
            pos, end = self.pos, len(self.lines)
            while pos < end:
                line = lines[pos]
                if eof and line[0] in "-\n" and any(at_eof(line) for at_eof in eof):
                    break
                if not header_re(line):
                    if line[0] == "\n":
                        pos += 1  # the blank line between headers and body is consumed
                    break
                headers.append(line)
                pos += 1
            self.pos = pos
        self._parse_headers(cur, headers)
        ctype = cur.get_content_type()
        if ctype == "message/delivery-status":
            while True:
                self.eof.append(_NL.match)
                self._parsegen(self._new(cur, ctype))
                self.eof.pop()
                self.readline()
                line = self.readline()
                if line == "":
                    break
                self.unreadline(line)
            return
        maintype = ctype.split("/")[0]
        if maintype == "message":
            self._parsegen(self._new(cur, ctype))
            return
        if maintype == "multipart":
            self._multipart(cur, ctype)
            return
        cur.set_payload("".join(self.rest()))

    def _multipart(self, cur: email.message.Message, ctype: str) -> None:
        params = cur.get("content-type", "")
        if not isinstance(params, str):  # raw 8-bit bytes in the header come back as a Header
            raise Unsupported("8-bit Content-Type")
        if "*" in params:  # RFC 2231 parameter pieces: leave them to the stdlib
            raise Unsupported("RFC 2231 parameters")
        boundary = _simple_boundary(params) if isinstance(params, str) else None
        if boundary is None:
            boundary = cur.get_boundary()
        if boundary is None:
            cur.set_payload("".join(self.rest()))
            return
        separator = "--" + boundary
        size = len(separator)

        def is_boundary(line: str) -> tuple[bool, str | None] | None:
            """FeedParser's `--boundary(--)?[ \\t]*(\\n)?$` match: (closing, line end) or None."""
            if not line.startswith(separator):
                return None
            rest = line[size:]
            closing = rest.startswith("--")
            rest = (rest[2:] if closing else rest).lstrip(" \t")
            if rest == "":
                return closing, None
            if rest == "\n":
                return closing, "\n"
            return None

        capturing_preamble = True
        preamble: list[str] = []
        linesep: str | None = None
        close_boundary_seen = False
        while True:
            line = self.readline()
            if line == "":
                break
            mo = is_boundary(line)
            if mo:
                if mo[0]:
                    close_boundary_seen = True
                    linesep = mo[1]
                    break
                if capturing_preamble:
                    if preamble:
                        lastline = preamble[-1]
                        eol = _NL_EOL.search(lastline)
                        if eol:
                            preamble[-1] = lastline[: -len(eol.group(0))]
                        cur.preamble = "".join(preamble)
                    capturing_preamble = False
                    self.unreadline(line)
                    continue
                while True:
                    line = self.readline()
                    if not is_boundary(line):
                        self.unreadline(line)
                        break
                self.eof.append(is_boundary)
                self._parsegen(self._new(cur, ctype))
                # As FeedParser does, trim the newline that belongs to the boundary from the
                # newest message parsed (for a message/rfc822 part, the message inside it).
                last = self.last
                assert last is not None
                if last.get_content_maintype() == "multipart":
                    epilogue = last.epilogue
                    if epilogue == "":
                        last.epilogue = None
                    elif epilogue is not None:
                        eol = _NL_EOL.search(epilogue)
                        if eol:
                            last.epilogue = epilogue[: -len(eol.group(0))]
                else:
                    payload = last._payload  # type: ignore[attr-defined]
                    if isinstance(payload, str):
                        eol = _NL_EOL.search(payload)
                        if eol:
                            last._payload = payload[: -len(eol.group(0))]  # type: ignore[attr-defined]
                self.eof.pop()
                self.last = cur
            else:
                preamble.append(line)
        if capturing_preamble:
            cur.set_payload("".join(preamble))
            self.rest()
            cur.epilogue = ""
            return
        if not close_boundary_seen:
            return
        tail = [""] if linesep else []
        tail += self.rest()
        if tail:
            bol = _NL_BOL.match(tail[0])
            if bol:
                tail[0] = tail[0][len(bol.group(0)):]
        cur.epilogue = "".join(tail)

    @staticmethod
    def _parse_headers(cur: email.message.Message, lines: list[str]) -> None:
        """FeedParser._parse_headers with compat32's header_source_parse, inlined."""
        out: list[tuple[str, str]] = cur._headers  # type: ignore[attr-defined]
        name = ""
        value = ""
        for line in lines:
            if line[0] in " \t":
                if name:
                    value += line
                continue  # a continuation before any field: FeedParser drops it too
            if name:
                out.append((name, value.rstrip("\r\n")))
                name = ""
            if line.startswith("From "):
                raise Unsupported("a unix From line among the headers")
            i = line.find(":")
            if i == 0:
                continue  # "Missing header name.": FeedParser drops the line
            name = line[:i]
            value = line[i + 1:].lstrip(" \t")
        if name:
            out.append((name, value.rstrip("\r\n")))



# A header block as FeedParser reads it when every line is a field or a field's continuation.
_FIELDS = re.compile(r"(?:[\041-\071\073-\176]*:[^\n]*\n(?:[ \t][^\n]*\n)*)*")
_FIELD = re.compile(r"([\041-\071\073-\176]*):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)\n")
# Every line of a block read as a field or, where it is none (no name and colon), as a field with
# no name whose value is the whole line: its matches tile a block that ends in a newline, from
# its first line. The quantifiers are possessive (no backtracking state kept): in such a block
# giving back a character never turns a failed match into a success, so the matches are _FIELD's.
_LINE = re.compile(r"(?:([\041-\071\073-\176]*+):[ \t]*+)?+([^\n]*+(?:\n[ \t][^\n]*+)*+)\n")


_name = operator.itemgetter(0)


class _NotQuick(Exception):
    """The text leaves the well-formed shape _Quick reads; _Parser reads it instead."""


class _Quick:
    """The same tree as _Parser for well-formed messages, found with str.find and regexes over
    the whole text instead of line by line.

    Each part is a span of the text: its header block is one regex match, a multipart's parts
    lie between its boundary lines, a delivery-status part's blocks between blank lines. It
    follows FeedParser's way with boundary newlines, preambles and epilogues; anything else
    (a header block that is not all fields, a missing final newline, text before the first
    boundary that closes, a block with a content type of its own) gives up and leaves the text
    to _Parser, whose output tests/test_mime.py compares with the stdlib's. (A payload here is a
    str with no charset, which set_payload() would just store: it is stored directly.)
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def parse(self) -> email.message.Message | None:
        text = self.text
        if text and not text.endswith("\n"):
            return None
        root = _Message(_POLICY)
        try:
            self._part(root, 0, len(text))
        except _NotQuick:
            return None
        return root

    def _headers(self, cur: email.message.Message, start: int, end: int) -> int:
        """Read the header block at `start`; where its body starts."""
        text = self.text
        if start < end and text[start] not in "\n \t":
            # The usual block: fields up to a blank line (or the span's end). Read in one pass
            # as lines; if no line lacks a name it is all fields, just as _FIELDS would find.
            blank = text.find("\n\n", start, end)
            stop = blank + 1 if blank != -1 else end
            if text[stop - 1] == "\n":
                fields = _LINE.findall(text, start, stop)
                if all(map(_name, fields)):
                    self._fields(cur, fields)
                    return stop + 1 if stop < end else stop
        block = _FIELDS.match(text, start, end)
        stop = block.end() if block else start
        if stop < end:
            first = text[stop]
            if first in " \t" or text.startswith("From ", stop):
                raise _NotQuick  # a stray continuation or a unix From line: FeedParser's quirks
        if stop > start:
            # A value never ends in a newline here (the regex leaves the last one out), so the
            # rstrip FeedParser applies has nothing to take. A field with no name is dropped
            # with its continuation lines, as FeedParser does.
            fields = _FIELD.findall(text, start, stop)
            if text.startswith(":", start) or text.find("\n:", start, stop) != -1:
                fields = [field for field in fields if field[0]]  # a field with no name
            self._fields(cur, fields)
        if stop < end and text[stop] == "\n":
            stop += 1  # the blank line between headers and body is consumed
        return stop

    @staticmethod
    def _fields(cur: email.message.Message, fields: list[tuple[str, str]]) -> None:
        cur._headers = fields  # type: ignore[attr-defined]
        if not isinstance(cur, _Message):
            return
        for name, value in fields:
            # (names here are ASCII, so only a 12-character one can lower to "content-type")
            if len(name) == 12 and name.lower() == "content-type":
                # get_content_type() as compat32 answers it, for a plain (ASCII) value
                if value.isascii():
                    ctype = value.split(";", 1)[0].strip().lower()
                    cur._ctype = ctype if ctype.count("/") == 1 else "text/plain"
                    cur._ctype_value = value
                    cur._ctype_known = True
                break
        else:
            cur._ctype = ""  # no Content-Type: the default type
            cur._ctype_known = True

    def _part(self, cur: email.message.Message, start: int, end: int) -> None:
        body = self._headers(cur, start, end)
        ctype = cur.get_content_type()
        if ctype == "message/delivery-status":
            self._report(cur, ctype, body, end)
            return
        # A content type here always holds one "/": its main type is what comes before it.
        if ctype.startswith("message/"):
            sub = self._new(cur, ctype)
            self._part(sub, body, end)
            return
        if ctype.startswith("multipart/"):
            self._multipart(cur, ctype, body, end)
            return
        cur._payload = self.text[body:end]  # type: ignore[attr-defined]

    def _new(self, parent: email.message.Message, parent_type: str) -> email.message.Message:
        msg = _Message(_POLICY)
        if parent_type == "multipart/digest":
            msg.set_default_type("message/rfc822")
        # parent.attach(msg): a parent's payload here is None or its list of parts
        payload = parent._payload  # type: ignore[attr-defined]
        if payload is None:
            parent._payload = [msg]  # type: ignore[attr-defined]
        else:
            payload.append(msg)
        return msg

    def _report(self, cur: email.message.Message, ctype: str, pos: int, end: int) -> None:
        """message/delivery-status: a sub-message per block, blocks end at blank lines."""
        text = self.text
        while True:
            if pos < end and text[pos] == "\n":
                blank = pos
            else:
                found = text.find("\n\n", pos, end)
                blank = found + 1 if found != -1 else end
            sub = self._new(cur, ctype)
            body = self._headers(sub, pos, blank) if pos < blank else pos
            if body > blank:  # the block's blank line belongs to the report, not the block
                raise _NotQuick
            if sub.get_content_type() != "text/plain":
                raise _NotQuick
            sub._payload = text[body:blank]  # type: ignore[attr-defined]
            if blank >= end:
                return
            pos = blank + 1  # the blank line is consumed
            if pos >= end:
                return

    def _multipart(self, cur: email.message.Message, ctype: str, start: int, end: int) -> None:
        params = content_type_value(cur)
        if not isinstance(params, str) or "*" in params:
            raise _NotQuick
        boundary = _simple_boundary(params)
        if boundary is None:
            boundary = cur.get_boundary()
        if boundary is None:
            cur._payload = self.text[start:end]  # type: ignore[attr-defined]
            return
        text = self.text
        marks = self._boundaries("--" + boundary, start, end)
        if not marks:
            # No boundary line: FeedParser reads the whole body as the preamble, then, having
            # met no boundary, makes it the payload, with an empty epilogue.
            cur._payload = text[start:end]  # type: ignore[attr-defined]
            cur.epilogue = ""
            return
        if marks[0][2]:
            raise _NotQuick  # a closing boundary first: FeedParser's odd path
        if marks[0][0] > start:
            preamble = text[start:marks[0][0]]
            cur.preamble = preamble[:-1] if preamble.endswith("\n") else preamble
        closed = False
        i = 0
        while i < len(marks):
            mark = marks[i]
            if mark[2]:
                closed = True
                break
            # Boundary lines in a row open one part, not several empty ones.
            while i + 1 < len(marks) and marks[i + 1][0] == mark[1] and not marks[i + 1][2]:
                i += 1
                mark = marks[i]
            part_end = marks[i + 1][0] if i + 1 < len(marks) else end
            sub = self._new(cur, ctype)
            self._part(sub, mark[1], part_end)
            self._trim(sub)
            i += 1
        if closed:
            cur.epilogue = text[marks[i][1]:end]

    def _boundaries(self, separator: str, start: int, end: int) -> list[tuple[int, int, bool]]:
        """(line start, line end, closing) of every boundary line in the span: the separator,
        maybe "--", maybe blanks, then the line's end."""
        text = self.text
        found = []
        line = "\n" + separator
        size = len(separator)
        if text.startswith(separator, start, end):
            at = start
        else:
            at = text.find(line, start, end)
            at = at + 1 if at != -1 else -1
        while at != -1:
            stop = text.find("\n", at, end)
            if stop == -1:
                break
            rest = text[at + size:stop]
            closing = rest.startswith("--")
            if not (rest[2:] if closing else rest).strip(" \t"):
                found.append((at, stop + 1, closing))
            at = text.find(line, stop, end)
            at = at + 1 if at != -1 else -1
        return found

    @staticmethod
    def _trim(sub: email.message.Message) -> None:
        """FeedParser gives the newline before a boundary to the boundary: take it off the newest
        message parsed (for a message/* part, the innermost last one)."""
        last = sub
        while True:
            payload = last._payload  # type: ignore[attr-defined]
            # get_content_maintype() == "multipart": a content type always holds one "/"
            multipart = last.get_content_type().startswith("multipart/")
            if multipart or not isinstance(payload, list) or not payload:
                break
            last = payload[-1]
        if multipart:
            epilogue = last.epilogue
            if epilogue == "":
                last.epilogue = None
            elif epilogue is not None and epilogue.endswith("\n"):
                last.epilogue = epilogue[:-1]
            return
        payload = last._payload  # type: ignore[attr-defined]
        if isinstance(payload, str) and payload.endswith("\n"):
            last._payload = payload[:-1]  # type: ignore[attr-defined]
