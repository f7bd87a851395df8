"""botocore's own service models: what a request may hold, and errors in AWS's shape.

Every operation's input is checked against the shape botocore ships for it
(``botocore.loaders``), so the fields the API accepts are exactly the fields
accepted here. botocore's ``ParamValidator`` (what boto3 checks client-side)
reports missing required members, unknown members and wrong types; the
constraints it leaves to the service (enums, lengths, ranges, patterns) are
checked here by walking the same shape. Messages read as AWS writes them
(``1 validation error detected: Value 'x' at 'resourceConfig.instanceCount'
failed to satisfy constraint: Member must have value greater than or equal
to 1``), and every error goes back as a JSON 1.1 error body, so boto3 raises
the same ``ClientError`` codes as against AWS.
"""

from __future__ import annotations

import datetime
import functools
import json
import re

from ..core import guarded_json
from ..errors import shown_value


class ApiError(Exception):
    """An error answer: HTTP status, AWS error code, message."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message}).encode()


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationException", message)


@functools.lru_cache(maxsize=None)
def service_model(name: str):
    """botocore's model of ``name`` (``sagemaker``, ``logs``)."""
    import botocore.loaders  # noqa: PLC0415 - botocore only when a request comes
    import botocore.model  # noqa: PLC0415

    loader = botocore.loaders.create_loader()
    return botocore.model.ServiceModel(loader.load_service_model(name, "service-2"), name)


def operation(service: str, name: str):
    """The operation model, or an ApiError that the service does not have it."""
    model = service_model(service)
    if name not in model.operation_names:
        raise ApiError("UnknownOperationException", f"Unknown operation {name}.")
    return model.operation_model(name)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _shown(value, path: str) -> str:
    """A value as a message quotes it: never the value of a secret-named field or map entry
    (``hyperParameters.db_password.value``), never a URL's password (errors.shown_value)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = shown_value(path, text)
    return text if len(text) <= 200 else text[:197] + "..."


def _structural_errors(params: dict, shape) -> list[str]:
    """botocore's ParamValidator: missing, unknown and mistyped members."""
    import botocore.validate  # noqa: PLC0415

    report = botocore.validate.ParamValidator().validate(params, shape)
    messages = []
    for kind, name, details in report._errors:  # noqa: SLF001 - the structured report
        where = ".".join(_camel(part) for part in name.strip(".").split(".") if part)
        if kind == "missing required field":
            path = ".".join(p for p in (where, _camel(details["required_name"])) if p)
            messages.append(f"Value null at '{path}' failed to satisfy constraint: Member must not be null")
        elif kind == "unknown field":
            path = ".".join(p for p in (where, details["unknown_param"]) if p)
            messages.append(f"Unknown member '{path}': it is not a member of this request "
                            f"(valid: {', '.join(details['valid_names'])})")
        elif kind == "invalid type":
            kinds = ", ".join(t.replace("<class '", "").replace("'>", "") for t in details["valid_types"])
            messages.append(f"Value {_shown(details['param'], where)!r} at '{where}' failed to satisfy constraint: "
                            f"Member must be of type {kinds}")
        # ranges and lengths: _constraint_errors checks them all, as the service does
    return messages


@functools.lru_cache(maxsize=512)
def _pattern(text: str):
    try:
        return re.compile(text)
    except re.error:  # a Java-only construct: the service checks it, we cannot
        return None


def _constraint_errors(value, shape, path: str, out: list) -> None:
    """Enums, lengths, ranges and patterns, depth first, as the service checks them."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                _constraint_errors(value[name], member, f"{path}.{_camel(name)}" if path else _camel(name), out)
        return
    if kind == "list" and isinstance(value, list):
        for index, item in enumerate(value, 1):
            _constraint_errors(item, shape.member, f"{path}.{index}.member", out)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            _constraint_errors(key, shape.key, f"{path}.{key}.key", out)
            _constraint_errors(item, shape.value, f"{path}.{key}.value", out)
    shown = f"Value {_shown(value, path)!r} at '{path}' failed to satisfy constraint: Member must"
    if kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            out.append(f"{shown} satisfy enum value set: [{', '.join(shape.enum)}]")
            return
        if "pattern" in meta and _pattern(meta["pattern"]) and not _pattern(meta["pattern"]).fullmatch(value):
            out.append(f"{shown} satisfy regular expression pattern: {meta['pattern']}")
    sized = kind in ("string", "list", "map", "blob") and isinstance(value, (str, list, dict, bytes))
    if sized:
        measure, what = len(value), "have length"
    elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        measure, what = value, "have value"
    else:
        return
    if "min" in meta and measure < meta["min"]:
        out.append(f"{shown} {what} greater than or equal to {meta['min']:g}")
    elif "max" in meta and measure > meta["max"]:
        out.append(f"{shown} {what} less than or equal to {meta['max']:g}")


def validate(service: str, name: str, params) -> dict:
    """``params`` checked against the operation's input shape; a ValidationException
    listing every problem (as AWS does) when there are any."""
    model = operation(service, name)
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    shape = model.input_shape
    if shape is None:
        return params
    errors = _structural_errors(params, shape)
    _constraint_errors(params, shape, "", errors)
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise validation_error(count + "; ".join(errors))
    return params


def parse_body(raw: bytes):
    try:
        return guarded_json.loads(raw or b"{}")
    except ValueError:
        raise ApiError("SerializationException", "The request body is not valid JSON.") from None
    except guarded_json.TooDeep:
        raise ApiError("SerializationException", f"The request body nests JSON more than "
                                                 f"{guarded_json.MAX_NESTING} levels deep.") from None


def epoch(value, where: str = "timestamp") -> float | None:
    """A timestamp as epoch seconds, in any form botocore serialises or parses: a number or a
    numeric string of epoch seconds, ISO 8601, RFC 822; a ValidationException otherwise."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    from botocore.utils import parse_timestamp  # noqa: PLC0415

    try:
        return parse_timestamp(str(value)).timestamp()
    except (ValueError, TypeError, OverflowError, RuntimeError, OSError):
        raise validation_error(f"Value {_shown(value)!r} at '{where}' failed to satisfy constraint: Member must "
                               "be a timestamp (epoch seconds, ISO 8601 or RFC 822)") from None


def encode(answer: dict) -> bytes:
    return json.dumps(answer, default=str).encode()
