"""The one reader of the toolkit's own ``SAGEMAKER_*`` knobs.

Every number the toolkit takes from its environment goes through
:func:`number`: unset or empty means the default; anything else must parse
(and be an integer where one is needed, and inside the allowed range), or
the job fails before it starts with a ClientError that names the variable
and the value it got. Nothing is silently replaced by a default.
"""

from __future__ import annotations

import math
import os

from ..errors import ClientError


def _environ(environ):
    return os.environ if environ is None else environ


def raw(name: str, environ=None) -> str | None:
    """The variable's value stripped, or None when it is unset or empty."""
    value = _environ(environ).get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def number(name: str, default, *, integer: bool = False, minimum: float | None = 0, maximum: float | None = None,
           environ=None):
    """``name`` as a float (an int with ``integer``), or ``default`` when unset.

    A value that does not parse, is not finite, is not whole where an
    integer is wanted, or lies outside [minimum, maximum] is a ClientError.
    """
    text = raw(name, environ)
    if text is None:
        return default
    what = "a whole number" if integer else "a number"
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    wanted = what + (f" {' and '.join(bounds)}" if bounds else "")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (integer and not value.is_integer()) \
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ClientError(f"environment variable {name}={text!r} is not valid: it must be {wanted}; "
                          "fix or unset it.")
    return int(value) if integer else value


def seconds(name: str, default: float, environ=None) -> float:
    """A duration in seconds (>= 0)."""
    return number(name, default, minimum=0, environ=environ)


def port(name: str, default: int, environ=None) -> int:
    """A TCP port number (1-65535)."""
    return number(name, default, integer=True, minimum=1, maximum=65535, environ=environ)
