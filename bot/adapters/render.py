"""Delist drafts through Jinja2: the only module that imports jinja2.

Templates live in `templates/` at the repository root (an installed delistbot carries them in
`<prefix>/share/delistbot/templates`, see `template_dirs`), one per delist route family
(`<route.template>.txt.j2`), all extending `_base.txt.j2`, which lays out the headers (Subject, To
or the form's address), the body block and the contact signature. Plain-text mail: no autoescape,
`StrictUndefined` so a missing value fails loudly instead of printing nothing, and user text
(rejection lines, what was fixed) only ever arrives as a variable, never as template source.

Anything the operator still has to fill in is written as `[TODO: …]`; `Draft.todo` lists them so
the CLI and Slack can flag the draft as not ready to send.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from bot.core.errors import DelistbotError

SOURCE_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"  # a checkout (or -e install)
INSTALLED_TEMPLATES = Path("share", "delistbot", "templates")  # under a data directory
SUFFIX = ".txt.j2"
BASE = "_base" + SUFFIX
_BLANKS = re.compile(r"\n{3,}")
_TODO = re.compile(r"\[TODO: [^\]]+\]")


class TemplateError(DelistbotError):
    """A draft template is missing or broken; the message names it."""


@dataclass(frozen=True)
class Draft:
    template: str
    subject: str
    to: str  # an e-mail address, or the URL of the form to fill in
    text: str  # the whole draft as printed: headers, blank line, body, signature
    todo: tuple[str, ...] = ()  # "[TODO: …]" prompts left in the text

    @property
    def ready(self) -> bool:
        return not self.todo


def template_dirs() -> list[Path]:
    """Where the templates may be, in order: the source tree, then the data directory of the
    environment delistbot is installed in (`pip install .` puts them there; see pyproject.toml),
    then the user's (`pip install --user`)."""
    places = [SOURCE_TEMPLATES]
    for scheme in (None, f"{os.name}_user"):
        try:
            data = sysconfig.get_path("data", scheme) if scheme else sysconfig.get_path("data")
        except KeyError:  # no user scheme on this platform
            continue
        places.append(Path(data) / INSTALLED_TEMPLATES)
    places.append(Path(sys.prefix) / INSTALLED_TEMPLATES)
    return list(dict.fromkeys(places))


def find_templates() -> Path:
    """The first place holding the templates; TemplateError naming every place looked in."""
    places = template_dirs()
    for place in places:
        if (place / BASE).is_file():
            return place
    raise TemplateError(
        "the draft templates are missing: looked for "
        + ", ".join(str(p / BASE) for p in places)
        + " (reinstall delistbot, or run it from its source tree)"
    )


class Renderer:
    """Renders `<name>.txt.j2` from a templates directory (by default, `find_templates()`)."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        self._dir = templates_dir  # found on first use: commands without drafts never look
        self._env: jinja2.Environment | None = None

    @property
    def dir(self) -> Path:
        if self._dir is None:
            self._dir = find_templates()
        return self._dir

    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(self.dir)),
                undefined=jinja2.StrictUndefined,
                autoescape=False,  # plain-text mail: HTML escaping would corrupt "<" and "&"
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._env

    def names(self) -> list[str]:
        """Template names (without suffix), the shared base and macros excluded."""
        return sorted(
            p.name.removesuffix(SUFFIX)
            for p in self.dir.glob(f"*{SUFFIX}")
            if not p.name.startswith("_")
        )

    def render(self, name: str, context: Mapping[str, Any]) -> Draft:
        try:
            template = self.env.get_template(name + SUFFIX)
            text = _tidy(template.render(context))
        except jinja2.TemplateNotFound:
            raise TemplateError(f"no draft template {name}{SUFFIX} in {self.dir}") from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {name}{SUFFIX}: {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {exc.name}, line {exc.lineno}: {exc.message}") from None
        headers = _headers(text)
        if "Subject" not in headers:
            raise TemplateError(f"template {name}{SUFFIX} must extend _base{SUFFIX} (no Subject)")
        to = headers.get("To") or headers.get("Form") or headers.get("See") or ""
        todo = tuple(dict.fromkeys(_TODO.findall(text)))  # one prompt, however often it appears
        return Draft(name, headers["Subject"], to, text, todo)


def _tidy(text: str) -> str:
    """At most one blank line in a row, no trailing blanks: templates stay readable with
    conditional sections, and the draft still looks hand-written."""
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def _headers(text: str) -> dict[str, str]:
    """The 'Name: value' lines before the first blank line."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        name, sep, value = line.partition(": ")
        if sep:
            out[name.strip()] = value.strip()
    return out
