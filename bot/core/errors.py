"""The one exception root.

Raise for programmer and configuration errors only; expected outcomes ("not a bounce", "not
listed", "timed out") are values, never exceptions.
"""


class DelistbotError(Exception):
    """Root of every exception delistbot raises on purpose."""


class KnowledgeError(DelistbotError):
    """The provider knowledge data is malformed; the message names the file and the row."""


class ConfigError(DelistbotError):
    """A setting is missing or malformed; the message names the setting."""


class InputError(DelistbotError):
    """Input that cannot be read at all (unreadable file, wrong type); the message says why."""
