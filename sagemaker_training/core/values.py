"""A minimal stand-in for ``dataclasses`` on the supervisor's start-up path.

``import dataclasses`` pulls in ``inspect`` (and with it ``ast``, ``dis``,
``tokenize``): about 10 ms of every ``train`` start. The few value classes the
supervisor needs list their fields in ``_fields`` and get ``__repr__`` and
``__eq__`` from here; their ``__init__`` is written out.
"""

from __future__ import annotations


class Value:
    """A value class: its ``_fields`` give its ``repr`` and its equality."""

    _fields: tuple = ()

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    __hash__ = None  # mutable, compared by value: like a dataclass with eq=True
