"""Text crossing the Slack boundary, both ways.

Outgoing: Slack's mrkdwn has exactly three control characters, `&`, `<` and `>`; every mention
(`<!channel>`, `<!here>`, `<@U123>`, `<!subteam^S1>`) and every link is written with `<...>`.
Escaping those three in anything we echo therefore makes a pasted mention inert text. We never set
`link_names`, so a plain "@here" stays plain too.

Incoming: message and command text arrives entity-encoded, with e-mail addresses and domains
turned into `<mailto:a@b|a@b>` / `<http://x.com|x.com>` links. A bounce parser needs the text as the
mail server wrote it, so `from_slack` unwraps links and decodes the entities.
"""

from __future__ import annotations

import re

# <mailto:a@b|a@b>, <http://x|label>, <http://x>; mentions and channels (<!…>, <@…>, <#…>) are
# left for `_MENTION` below.
_LINK = re.compile(r"<((?:mailto:|https?://|ftp://)[^|>\s]*)(?:\|([^>]*))?>")
_MENTION = re.compile(r"<([!@#][^|>]*)(?:\|([^>]*))?>")


def escape(text: str) -> str:
    """Make untrusted text safe inside mrkdwn: no mention, no link, no formatting tokens."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unlink(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if label:
        return label
    return target.removeprefix("mailto:")


def _unmention(match: re.Match[str]) -> str:
    # Keep the token readable ("<!channel>" -> "@channel") so a pasted bounce that contained
    # one is still diagnosed, but it is no longer markup once escaped on the way out.
    token, label = match.group(1), match.group(2)
    return "@" + (label or token.lstrip("!@#").split("^")[0])


def from_slack(text: str) -> str:
    """Slack-encoded message text -> the plain text a user pasted."""
    text = _LINK.sub(_unlink, text)
    text = _MENTION.sub(_unmention, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
