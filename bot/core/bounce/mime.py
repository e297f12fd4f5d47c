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
import re
from collections.abc import Callable

_POLICY = email.policy.compat32
_HEADER_RE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")
_NL_EOL = re.compile(r"(\r\n|\r|\n)\Z")
_NL_BOL = re.compile(r"(\r\n|\r|\n)")
_NL = re.compile(r"\r\n|\r|\n")

Matcher = Callable[[str], object]


class _Message(email.message.Message):
    """A compat32 Message that works out its content type once (its headers never change here)."""

    _ctype: str | None = None

    def get_content_type(self) -> str:
        if self._ctype is None:
            self._ctype = super().get_content_type()
        return self._ctype


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
    return email.utils.unquote(email.utils.unquote(match.group(1))).rstrip()


class Unsupported(Exception):
    """Input this parser does not model; the caller uses the stdlib parser."""


def message_from_bytes(data: bytes) -> email.message.Message:
    """The tree `email.message_from_bytes(data, policy=compat32)` builds, built faster."""
    if b"\r" in data:
        raise Unsupported("carriage returns")
    return _Parser(data.decode("ascii", "surrogateescape")).parse()


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
        root = _Message(policy=_POLICY)
        self.last = root
        self._parsegen(root)
        return root

    def _new(self, parent: email.message.Message, parent_type: str) -> email.message.Message:
        msg = _Message(policy=_POLICY)
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
