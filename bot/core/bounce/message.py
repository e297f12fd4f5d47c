"""Bytes to readable parts: line endings, mbox splitting, MIME walking, charsets.

Real bounces arrive with LF, CRLF or CR-only endings, in mboxes, with broken MIME and in every
charset Japanese and European MTAs use (ISO-2022-JP, Shift_JIS, ISO-8859-x, quoted-printable,
base64). Nothing here raises on bad input: what cannot be decoded is decoded with replacement
characters, and what is not MIME at all is returned as one plain-text body.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.header
import email.message
import email.policy
import itertools
import quopri
import re
from dataclasses import dataclass, field
from html import unescape

from bot.core.bounce import mime

# "From sender date" separator lines of mbox files (RFC 4155); dates vary, so only the shape.
_MBOX_FROM = re.compile(rb"^From \S+.*\d\d:\d\d(?::\d\d)?.*$", re.MULTILINE)
_CHARSET_ALIASES = {
    "x-sjis": "shift_jis",
    "sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "iso-2022-jp-ms": "iso2022_jp_ext",
    "cp932": "cp932",
    "ks_c_5601-1987": "cp949",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "us-ascii": "utf-8",  # many "us-ascii" parts really carry UTF-8 or Latin-1 bytes
    "ascii": "utf-8",
}
MAX_PART_BYTES = 2 * 1024 * 1024  # a bounce's interesting text is small; cap what is decoded


def normalise_newlines(data: bytes) -> bytes:
    """CRLF and CR-only line endings to LF."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def split_mbox(data: bytes) -> list[bytes]:
    """An mbox holding several messages -> the messages; anything else -> [data]."""
    if not data.startswith(b"From "):
        return [data]
    # A separator starts a line with "From ": look only there (what finditer would find, as the
    # pattern spans no more than its line).
    starts = [0] if _MBOX_FROM.match(data) else []
    at = data.find(b"\nFrom ")
    while at != -1:
        if _MBOX_FROM.match(data, at + 1):
            starts.append(at + 1)
        at = data.find(b"\nFrom ", at + 1)
    return mbox_messages(data, starts)


def mbox_messages(data: bytes, starts: list[int]) -> list[bytes]:
    """The messages of an mbox whose separator lines begin at `starts`, without the separators
    and with ">From " unquoted; [data] when the text does not open with a separator."""
    if not starts or starts[0] != 0:
        return [data]
    chunks = []
    for begin, end in zip(starts, [*starts[1:], len(data)], strict=True):
        line_end = data.find(b"\n", begin)
        body = data[line_end + 1 : end] if line_end != -1 else b""
        chunks.append(re.sub(rb"(?m)^>(>*From )", rb"\1", body))
    return [c for c in chunks if c.strip()]


# Up to 12 lines, each a header line or a continuation (a blank, then something not blank); the
# group holds the 12th line when there is one.
_HEAD_LINE = (rb"(?:[A-Za-z][A-Za-z0-9_-]*+:[^\n]*+|[ \t][ \t\r\x0b\x0c]*+[^ \t\r\x0b\x0c\n][^\n]*+)"
              rb"(?:\n|\Z)")
_HEAD_LINES = re.compile(rb"(?:%s){0,11}+(%s)?+" % (_HEAD_LINE, _HEAD_LINE))
_NEXT_FIELD = re.compile(rb"\n[A-Za-z]")


def looks_like_message(data: bytes) -> bool:
    """True when the bytes start with an RFC 5322 header block (at least two header lines).

    Of the first 12 lines, those before the first blank one must all be header lines or
    continuations: one regex match takes them, and the line it stops at must be blank. Each
    line it took starts with a letter (a field) or a blank (a continuation), so instead of
    counting lines, look for a newline followed by a letter inside what it took: one is enough
    when the first line is a field, otherwise two."""
    head = data.lstrip(b"\n")
    taken = _HEAD_LINES.match(head)
    end = taken.end()  # type: ignore[union-attr]
    if taken.start(1) == -1 and end < len(head):  # type: ignore[union-attr]  # < 12 lines taken
        stop = head.find(b"\n", end)
        if head[end:stop if stop != -1 else len(head)].strip():
            return False  # a line that is neither a field, a continuation nor blank
    later = _NEXT_FIELD.search(head, 0, end)
    if later is None:
        return False
    if end and head[:1] not in b" \t":  # the first line is a field too
        return True
    return _NEXT_FIELD.search(head, later.end(), end) is not None


def charset_name(charset: str | None) -> str:
    """The codec name for a charset label (its aliases, quotes and case aside); utf-8 for an
    unknown one. The labels bounces usually carry are resolved once, at import."""
    name = _CODEC_NAMES.get(charset)
    return name if name is not None else _codec_name(charset)


def _codec_name(charset: str | None) -> str:
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


# Labels as content_charset() and the header decoder give them (lower case), IANA's names and
# the aliases above, with what charset_name() answers for each.
_COMMON_CHARSETS = (
    "utf-8", "utf-16", "utf-7", "iso-2022-jp", "shift_jis", "euc-jp", "gb2312", "gbk", "gb18030",
    "big5", "euc-kr", "koi8-r", "koi8-u", "windows-31j", "iso-8859-1", "iso-8859-2", "iso-8859-5",
    "iso-8859-7", "iso-8859-9", "iso-8859-15", "windows-1250", "windows-1251", "windows-1252",
    "windows-1253", "windows-1254", "windows-1257",
)
_CODEC_NAMES = {label: _codec_name(label) for label in (None, *_CHARSET_ALIASES, *_COMMON_CHARSETS)}


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """Decode with the declared charset, then sniff common ones, never failing."""
    candidates = [charset_name(charset)]
    if b"\x1b$" in payload or b"\x1b(" in payload:
        candidates.insert(0, "iso2022_jp")
    candidates += ["utf-8", "cp932", "euc_jp"]
    for name in dict.fromkeys(candidates):
        try:
            return payload.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return payload.decode("latin-1")


def decode_header(value: object) -> str:
    """An RFC 2047 encoded header to text; tolerant of broken encodings."""
    if value is None:
        return ""
    text = str(value)
    if "=?" not in text:
        return " ".join(text.split())
    try:
        pieces = email.header.decode_header(text)
    except (ValueError, email.errors.HeaderParseError):
        return " ".join(text.split())
    out = []
    for raw, charset in pieces:
        out.append(decode_bytes(raw, charset) if isinstance(raw, bytes) else raw)
    return " ".join("".join(out).split())


# A tag, comment, declaration or processing instruction; quoted attribute values may hold ">".
# (A tag's attributes: runs of other characters and quoted values, one way only to read them,
# so the loop is possessive and unrolled: the same matches, without a step per character.)
_HTML_MARKUP = re.compile(
    r"""<!--.*?(?:-->|\Z)|<![^>]*>|<\?[^>]*>|<(/?)([a-zA-Z][^\s/>]*)[^>"']*+(?:(?:"[^"]*+"|'[^']*+')[^>"']*+)*+>""",
    re.S,
)
_HTML_BLOCKS = frozenset({"br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4"})
_HTML_HIDDEN = frozenset({"style", "script", "head"})
# Inside <script> and <style> nothing is markup until the element's own end tag (as HTMLParser
# reads them: CDATA content).
_HTML_CDATA_END = {name: re.compile(rf"</{name}(?=[\s/>])", re.I) for name in ("script", "style")}
# Each way to write those elements' names -> the name. A tag name lowers to one of them only when
# it is one of these spellings: of all characters but the ASCII letters, only the Kelvin sign
# lowers to one ("k"), which none of the names holds.
_HTML_NAMES = {"".join(spelling): name for name in _HTML_BLOCKS | _HTML_HIDDEN
               for spelling in itertools.product(*zip(name, name.upper(), strict=True))}


def html_to_text(html: str) -> str:
    """Just the text of an HTML part, with block elements as line breaks; never raises."""
    out: list[str] = []
    hidden = 0  # depth inside <style>, <script>, <head>
    pos = 0
    size = len(html)
    while pos < size:
        # The markup from `pos` on, each match where the last ended (as searching again from
        # there would find it), until a CDATA element moves `pos` past its content.
        for tag in _HTML_MARKUP.finditer(html, pos):
            start, end = tag.span()
            if not hidden and start > pos:
                out.append(html[pos:start])
            pos = end
            name = _HTML_NAMES.get(tag[2])
            if name is None:
                continue  # a comment, doctype, processing instruction or other element
            if name in _HTML_BLOCKS:
                out.append("\n")
            elif name in _HTML_HIDDEN:
                if tag[1]:  # a closing tag
                    hidden = max(0, hidden - 1)
                    continue
                hidden += 1
                cdata = _HTML_CDATA_END.get(name)
                if cdata is not None:
                    found = cdata.search(html, pos)
                    pos = found.start() if found else size
                    break
        else:
            break  # no markup after `pos`
    if not hidden and pos < size:
        out.append(html[pos:])
    # Lines with anything but blanks (str.strip's blanks are str.split's), their words joined.
    lines = filter(str.strip, unescape("".join(out)).splitlines())
    return "\n".join(map(" ".join, map(str.split, lines)))


@dataclass(init=False)
class Parts:
    """The parts of one message that bounce detectors read, already decoded to text."""

    headers: email.message.Message
    text: list[str] = field(default_factory=list)  # text/plain (and HTML turned to text)
    delivery_status: list[str] = field(default_factory=list)  # message/delivery-status bodies
    feedback: list[str] = field(default_factory=list)  # message/feedback-report bodies
    original: list[str] = field(default_factory=list)  # returned message or its headers
    attached: list[email.message.Message] = field(default_factory=list)  # message/rfc822 parts
    content_type: str = "text/plain"

    _first: dict[str, object] | None = field(default=None, init=False, repr=False, compare=False)

    def __init__(self, headers: email.message.Message, content_type: str = "text/plain") -> None:
        # Written out: the generated one calls a factory per list (one Parts per message read).
        self.headers = headers
        self.text = []
        self.delivery_status = []
        self.feedback = []
        self.original = []
        self.attached = []
        self.content_type = content_type
        self._first = None

    def header(self, name: str) -> str:
        """The first `name` field's value, decoded (as headers.get(name) gives it, looked up in
        an index of the fields made once instead of a scan per name)."""
        index = self._first
        if index is None:
            index = {}
            for key, value in self.headers._headers:  # type: ignore[attr-defined]
                index.setdefault(key.lower(), value)
            self._first = index
        value = index.get(name.lower())
        if value is not None and not (isinstance(value, str) and value.isascii()):
            value = self.headers.policy.header_fetch_parse(name, value)  # type: ignore[arg-type]
        return decode_header(value)

    @property
    def body(self) -> str:
        return "\n".join(self.text)


# Codecs that read ASCII bytes as the same ASCII text (no escapes, no wide units).
_ASCII_SUPERSETS = frozenset({
    "utf-8", "ascii", "latin-1", "iso8859-1", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5",
    "iso8859-6", "iso8859-7", "iso8859-8", "iso8859-9", "iso8859-10", "iso8859-13", "iso8859-14",
    "iso8859-15", "iso8859-16", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256",
    "cp1257", "cp1258", "shift_jis", "cp932", "euc_jp", "gb2312", "gbk", "gb18030", "big5", "euc_kr",
    "cp949", "koi8-r", "koi8-u",
})
_ENCODED = frozenset({"quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue"})


def content_charset(part: email.message.Message) -> str | None:
    """part.get_content_charset(), read directly for a plain ASCII Content-Type (no RFC 2231
    pieces, escapes, or quoted ";"); the stdlib's parameter parser otherwise. (With an even
    number of quotes, every other piece between them is a quoted string.)"""
    value = mime.content_type_value(part)
    if value is None:
        return None
    if (not isinstance(value, str) or not value.isascii() or "\\" in value or "*" in value
            or "<" in value or value.count('"') % 2
            or ('"' in value and ";" in '"'.join(value.split('"')[1::2]))):
        return part.get_content_charset()
    for piece in value.split(";"):
        name, _, charset = piece.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = charset.strip()
        if '"' in charset:
            if charset.count('"') != 2 or len(charset) < 2 or charset[0] != '"' or charset[-1] != '"':
                return part.get_content_charset()
            charset = charset[1:-1]
        return charset.lower()
    return None


def _payload_text(part: email.message.Message) -> str:
    raw = part._payload  # type: ignore[attr-defined]
    if isinstance(raw, str) and raw.isascii() and "\x1b" not in raw:
        # Plain ASCII in an ASCII-compatible charset reads as itself: what get_payload(decode=True)
        # and decode_bytes() would give, without the round trip through bytes.
        cte = mime.field(part, "content-transfer-encoding", "")
        if (isinstance(cte, str) and cte.lower() not in _ENCODED
                and charset_name(content_charset(part)) in _ASCII_SUPERSETS):
            return raw[:MAX_PART_BYTES]
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, AssertionError, LookupError):
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    return decode_bytes(payload[:MAX_PART_BYTES], content_charset(part))


def _header_lines(msg: email.message.Message) -> str:
    """"Name: value" per field, values decoded and unfolded: what
    `f"{k}: {decode_header(v)}"` over msg.items() gives. compat32 hands plain ASCII values back
    as they are, and such a value with no encoded word just has its whitespace collapsed, so
    only other values go through the policy (8-bit bytes become a Header) and decode_header."""
    fetch = msg.policy.header_fetch_parse
    return "\n".join([
        f"{k}: {' '.join(v.split())}" if isinstance(v, str) and v.isascii() and "=?" not in v
        else f"{k}: {decode_header(fetch(k, v))}"
        for k, v in msg._headers])  # type: ignore[attr-defined]


def _payload(part: email.message.Message) -> object:
    """part.get_payload(), read directly for a list of parts or a plain ASCII string, which
    compat32 hands back as they are (it recodes only a string holding 8-bit bytes)."""
    raw = part._payload  # type: ignore[attr-defined]
    if isinstance(raw, list) or (isinstance(raw, str) and raw.isascii()):
        return raw
    return part.get_payload()


def _raw_text(part: email.message.Message) -> str:
    """A message/* part's text: the stdlib parses these into sub-messages; flatten them back."""
    payload = _payload(part)
    if isinstance(payload, str):
        return _payload_text(part)
    if isinstance(payload, list):
        chunks = []
        for sub in payload:
            if isinstance(sub, email.message.Message):
                chunks.append(_header_lines(sub))
                body = _payload(sub)
                if isinstance(body, str) and body.strip():
                    chunks.append(body)
        return "\n\n".join(chunks)
    return ""


def _report_text(part: email.message.Message) -> str:
    """A report part's fields; some gateways send them base64 or quoted-printable encoded
    (RFC 3464 allows any 7bit-safe transfer encoding), which the parser leaves undecoded."""
    text = _raw_text(part)
    encoding = str(mime.field(part, "content-transfer-encoding", "")).strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        return text
    raw = text.encode("ascii", "ignore")
    try:
        decoded = binascii.a2b_base64(raw) if encoding == "base64" else quopri.decodestring(raw)
    except (binascii.Error, ValueError):
        return text
    return normalise_newlines(decoded).decode("utf-8", "replace")


_REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_TYPES = frozenset({"message/rfc822", "text/rfc822-headers", "message/global",
                             "message/global-headers", "message/partial"})


def _walk(part: email.message.Message, parts: Parts, depth: int = 0) -> None:
    """Collect parts by role; never descend into the returned message or a report's blocks."""
    if depth > 8:  # a hostile message nesting parts without end
        return
    ctype = part.get_content_type()
    if ctype in _REPORT_TYPES:
        parts.delivery_status.append(_report_text(part))
    elif ctype == "message/feedback-report":
        parts.feedback.append(_raw_text(part))
    elif ctype in _ORIGINAL_TYPES:
        parts.original.append(_original_text(part))
        payload = _payload(part)
        if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
            parts.attached.append(payload[0])
    elif isinstance(part._payload, list):  # type: ignore[attr-defined]  # part.is_multipart()
        for sub in part._payload:  # type: ignore[attr-defined]
            if isinstance(sub, email.message.Message):
                _walk(sub, parts, depth + 1)
    elif ctype == "text/html":
        parts.text.append(html_to_text(_payload_text(part)))
    elif ctype.startswith("text/") or (ctype == "application/octet-stream" and _is_textual(part)):
        parts.text.append(_payload_text(part))


def _is_textual(part: email.message.Message) -> bool:
    name = (part.get_filename() or "").lower()
    return name.endswith((".txt", ".eml"))


def _original_text(part: email.message.Message) -> str:
    payload = _payload(part)
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        sub = payload[0]
        return _header_lines(sub)
    return _payload_text(part)


def parts_of(msg: email.message.Message) -> Parts:
    """The parts of a message already parsed, e.g. one attached to another (a forwarded bounce)."""
    parts = Parts(headers=msg, content_type=msg.get_content_type())
    try:
        _walk(msg, parts)
    except (LookupError, ValueError, TypeError, AttributeError, IndexError):
        parts.text = parts.text or [_raw_text(msg)]
    return parts


def parse_message(data: bytes) -> Parts:
    """Bytes of one RFC 5322 message -> its decoded parts. Never raises on malformed input."""
    msg = mime.parse(data)
    parts = Parts(headers=msg, content_type=msg.get_content_type())
    try:
        _walk(msg, parts)
    except (LookupError, ValueError, TypeError, AttributeError, IndexError):
        # The stdlib's MIME walk gave up on a malformed structure: keep what it had and fall back
        # to the raw body so the text detectors still get a chance.
        parts.text = [decode_bytes(data, None)]
    if not parts.text and not parts.delivery_status and not parts.feedback:
        raw = _payload(msg)
        if isinstance(raw, str):
            parts.text.append(raw)
        else:  # MIME the parser could not follow (e.g. a boundary on an unfolded line): read it raw
            head_end = data.find(b"\n\n")
            parts.text.append(decode_bytes(data[head_end + 2 :] if head_end != -1 else data, None))
    return parts
