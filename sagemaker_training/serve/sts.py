"""STS GetCallerIdentity (the query protocol: a form body, an XML answer).

The SDKs ask who is calling before they name default buckets or roles; the
answer is the fake account local mode's ARNs use.
"""

from __future__ import annotations

import urllib.parse
import uuid
from xml.sax.saxutils import escape

from ..params import ACCOUNT

_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def _xml(action: str, result: str) -> bytes:
    request_id = uuid.uuid4()
    return (f'<{action}Response xmlns="{_NAMESPACE}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>").encode()


def error(code: str, message: str) -> bytes:
    return (f'<ErrorResponse xmlns="{_NAMESPACE}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()


def call(body: bytes, query: str) -> tuple[int, bytes]:
    """(HTTP status, XML body) for one STS request."""
    fields = dict(urllib.parse.parse_qsl(query))
    fields.update(urllib.parse.parse_qsl(body.decode("utf-8", errors="replace")))
    action = fields.get("Action")
    if action != "GetCallerIdentity":
        return 400, error("InvalidAction", f"sagemaker-training serve answers only STS GetCallerIdentity, "
                                           f"not {action or 'a request without Action'}.")
    result = (f"<Arn>arn:aws:iam::{ACCOUNT}:user/sagemaker-training-serve</Arn>"
              f"<UserId>AIDALOCALSAGEMAKERSERVE</UserId><Account>{ACCOUNT}</Account>")
    return 200, _xml(action, result)
