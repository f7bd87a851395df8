"""JSON from outside the process, read once the same way: parsed, then refused if it nests too deeply.

Config files, hyperparameter values, local mode's request, serve's request
bodies: every reader calls :func:`loads` and words its own message from the
two refusals (``ValueError``: not JSON; :class:`TooDeep`: nested more than
:data:`MAX_NESTING` levels, or deeper than the decoder itself can go).
"""

from __future__ import annotations

import json

# JSON deeper than this (a config file, a hyperparameter's value, a request) is refused: far
# beyond any real configuration, and well inside what Python's recursive JSON encoder and
# decoder can take.
MAX_NESTING = 100


class TooDeep(Exception):
    """The JSON nests lists and objects more than :data:`MAX_NESTING` levels deep."""


def _children(value):
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    return value if isinstance(value, list) else ()


def too_deep(value, limit: int = MAX_NESTING) -> bool:
    """Whether lists and objects nest more than ``limit`` levels in ``value``."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in _children(item))
    return False


def loads(text: str | bytes):
    """The decoded value; ValueError when ``text`` is not JSON, :class:`TooDeep` when it nests too deeply."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if too_deep(value):
        raise TooDeep()
    return value
