"""Building the readers' frozen records (RecipientRecord, Bounce) without their __init__.

A frozen dataclass's __init__ sets each field through object.__setattr__, and
dataclasses.replace() first walks the fields in Python: for the few records every message
makes, that was a visible share of reading it. Both classes hold plain init fields only, with
no __post_init__ and no default factory (tests/test_format_reading.py checks that), so the
object __init__ would build is an instance whose dict holds the defaults and the values given;
that is what these build, after refusing a field the class does not have, as __init__ would.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

from bot.core.model import Bounce, RecipientRecord

_Record = TypeVar("_Record", RecipientRecord, Bounce)
# class -> (its fields' defaults, the names of the fields without one)
_DEFAULTS: dict[type, tuple[dict[str, Any], frozenset[str]]] = {
    cls: ({f.name: f.default for f in fields(cls) if f.default is not MISSING},
          frozenset(f.name for f in fields(cls) if f.default is MISSING))
    for cls in (RecipientRecord, Bounce)
}
_NAMES = {cls: frozenset(defaults) | required for cls, (defaults, required) in _DEFAULTS.items()}


def built(cls: type[_Record], **values: Any) -> _Record:
    """cls(**values)."""
    defaults, required = _DEFAULTS[cls]
    if not values.keys() <= _NAMES[cls] or not required <= values.keys():
        raise TypeError(f"{cls.__name__} takes {sorted(_NAMES[cls])}, {sorted(required)} required; "
                        f"got {sorted(values)}")
    record = object.__new__(cls)
    state = record.__dict__
    state.update(defaults)
    state.update(values)
    return record


def with_(record: _Record, **changes: Any) -> _Record:
    """dataclasses.replace(record, **changes)."""
    cls = type(record)
    if not changes.keys() <= _NAMES[cls]:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(changes.keys() - _NAMES[cls])}")
    copy = object.__new__(cls)
    state = copy.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return copy
