"""Who may call the server: its key pair, the SigV4 check of every request, and where it listens.

A server's key pair belongs to its state dir (``<state dir>/credentials``,
mode 0600, made at the first start and kept across restarts); ``serve``
prints it in its exports. Every request, on every path (SageMaker and Logs
JSON, STS, S3 through the proxy), must carry a SigV4 signature made with it,
in the Authorization header or (presigned) in the query. :meth:`Verifier.check`
recomputes that signature with botocore's own signer (``SigV4Auth``,
``S3SigV4Auth`` and their query-string twins: the canonical request of the
headers the client says it signed, the string to sign, the signing key) and
refuses, in the API's shape, a request

* with no signature (``MissingAuthenticationTokenException`` / S3 ``AccessDenied``);
* signed with another access key (``UnrecognizedClientException`` /
  STS ``InvalidClientTokenId`` / S3 ``InvalidAccessKeyId``);
* whose credential scope names another region than the server's, another
  service than the one it reaches, or another day than its X-Amz-Date;
* made more than :data:`SKEW_SECONDS` from now (a presigned URL: past its
  X-Amz-Expires);
* whose signature differs (``InvalidSignatureException`` / ``SignatureDoesNotMatch``).

S3's older presigned URLs (SigV2 query: ``AWSAccessKeyId``, ``Expires``,
``Signature``; boto3's ``generate_presigned_url`` makes them by default) are
checked with botocore's ``HmacV1QueryAuth`` (they name no region).

On the JSON and STS paths the body is hashed as botocore hashes it; on the S3
path the signature covers the payload hash the client declares
(``x-amz-content-sha256``: a hash or ``UNSIGNED-PAYLOAD``), as S3's does.

Anyone who holds the key runs code as the server's user: a non-loopback
``--host`` is refused unless ``--allow-remote`` says so (:func:`is_loopback`).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import string
import urllib.parse
from xml.sax.saxutils import escape

CREDENTIALS_FILE = "credentials"
SKEW_SECONDS = 15 * 60  # what AWS allows between a request's X-Amz-Date and its arrival
MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL's longest X-Amz-Expires (as S3's)
_ALGORITHM = "AWS4-HMAC-SHA256"
_STAMP = "%Y%m%dT%H%M%SZ"
_JSON_SERVICES = {"SageMaker": "sagemaker", "Logs_20140328": "logs"}
_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
             "Access Key and signing method. Consult the service documentation for details.")


# -- the key pair -------------------------------------------------------------------------------
def load_or_create(state_dir: str) -> tuple[str, str]:
    """(access key id, secret access key) of this state dir; made (0600) at the first start."""
    path = os.path.join(state_dir, CREDENTIALS_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data["AccessKeyId"], data["SecretAccessKey"]
    alphabet = string.ascii_uppercase + string.digits
    key = "ASTS" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = secrets.token_urlsafe(30)  # 40 characters
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"AccessKeyId": key, "SecretAccessKey": secret}, f)
    return key, secret


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (an unknown name is not)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


# -- refusals in each API's shape -----------------------------------------------------------------
class Refused(Exception):
    """A request the key does not cover: (status, body, content type) in its API's shape."""

    def __init__(self, api: str, code: str, message: str, status: int = 403):
        super().__init__(message)
        self.api, self.code, self.message, self.status = api, code, message, status

    def answer(self) -> tuple[int, bytes, str]:
        if self.api == "json":
            body = json.dumps({"__type": self.code, "message": self.message}).encode()
            return self.status, body, "application/x-amz-json-1.1"
        if self.api == "sts":
            from . import sts  # noqa: PLC0415

            return self.status, sts.error(self.code, self.message), "text/xml"
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{escape(self.code)}</Code>"
                f"<Message>{escape(self.message)}</Message><RequestId>serve</RequestId></Error>").encode()
        return self.status, body, "application/xml"


# (missing, unknown key, bad signature, malformed) codes per API
_CODES = {
    "json": ("MissingAuthenticationTokenException", "UnrecognizedClientException", "InvalidSignatureException",
             "IncompleteSignatureException"),
    "sts": ("MissingAuthenticationToken", "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature"),
    "s3": ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthorizationHeaderMalformed"),
}
_UNKNOWN_KEY = {"json": "The security token included in the request is invalid.",
                "sts": "The security token included in the request is invalid.",
                "s3": "The AWS Access Key Id you provided does not exist in our records."}


def api_of(target: str | None, scope_service: str | None) -> tuple[str, str | None]:
    """(API shape, the service a signature must be scoped to) of a request, routed as routes.py routes it."""
    if target:
        return "json", _JSON_SERVICES.get(target.partition(".")[0])
    if scope_service == "sts":
        return "sts", "sts"
    return "s3", "s3"


def _parse_header(value: str) -> dict | None:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != _ALGORITHM:
        return None
    fields = {}
    for part in rest.split(","):
        name, _, item = part.strip().partition("=")
        fields[name] = item
    if not all(fields.get(k) for k in ("Credential", "SignedHeaders", "Signature")):
        return None
    return fields


class Verifier:
    def __init__(self, access_key: str, secret_key: str, region: str):
        self.access_key, self.secret_key, self.region = access_key, secret_key, region

    def check(self, handler, api: str, service: str | None, body: bytes | None) -> None:
        """Raise :class:`Refused` unless ``handler``'s request is signed with this server's key.
        ``body``: the request's body (the JSON and STS paths), None on the S3 path."""
        missing, unknown, bad, malformed = _CODES[api]
        split = urllib.parse.urlsplit(handler.path)
        query_pairs = [pair for pair in split.query.split("&") if pair] if split.query else []
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        header = handler.headers.get("Authorization")
        if header is None and api == "s3" and "AWSAccessKeyId" in query and "Signature" in query:
            return self._check_v2_query(handler, split, query)
        presigned = header is None and query.get("X-Amz-Algorithm") is not None
        if header is None and not presigned:
            raise Refused(api, missing, "Missing Authentication Token" if api != "s3" else "Access Denied")
        if presigned:
            fields = {"Credential": query.get("X-Amz-Credential", ""), "SignedHeaders": query.get("X-Amz-SignedHeaders", ""),
                      "Signature": query.get("X-Amz-Signature", "")}
            if query.get("X-Amz-Algorithm") != _ALGORITHM or not all(fields.values()):
                raise Refused(api, malformed, "The query-string authentication is incomplete: it needs "
                                              "X-Amz-Algorithm=AWS4-HMAC-SHA256, X-Amz-Credential, "
                                              "X-Amz-SignedHeaders and X-Amz-Signature.", 400)
            stamp = query.get("X-Amz-Date", "")
        else:
            fields = _parse_header(header)
            if fields is None:
                raise Refused(api, malformed, "The Authorization header must be AWS4-HMAC-SHA256 with Credential, "
                                              "SignedHeaders and Signature (SigV4).", 400)
            stamp = handler.headers.get("X-Amz-Date", "")
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise Refused(api, malformed, "The credential must be KEY/DATE/REGION/SERVICE/aws4_request.", 400)
        key, day, region, scope_service = scope[:4]
        if not hmac.compare_digest(key.encode(), self.access_key.encode()):
            raise Refused(api, unknown, _UNKNOWN_KEY[api])
        if region != self.region:
            if api == "s3":
                raise Refused(api, malformed, f"The authorization header is malformed; the region {region!r} is "
                                              f"wrong; expecting {self.region!r}", 400)
            raise Refused(api, bad, "Credential should be scoped to a valid region.")
        if service is not None and scope_service != service:
            raise Refused(api, bad, f"Credential should be scoped to correct service: '{service}'.")
        moment = self._moment(api, stamp, day, bad)
        now = datetime.datetime.now(datetime.timezone.utc)
        if presigned:
            expires = query.get("X-Amz-Expires", "")
            if not expires.isdigit() or int(expires) > MAX_EXPIRES:
                raise Refused(api, "AuthorizationQueryParametersError",
                              f"X-Amz-Expires must be a number of seconds up to {MAX_EXPIRES}.", 400)
            if now > moment + datetime.timedelta(seconds=int(expires)) or \
                    moment - now > datetime.timedelta(seconds=SKEW_SECONDS):
                raise Refused(api, "AccessDenied", "Request has expired")
        elif abs((now - moment).total_seconds()) > SKEW_SECONDS:
            if api == "s3":
                raise Refused(api, "RequestTimeTooSkewed",
                              "The difference between the request time and the current time is too large.")
            raise Refused(api, bad, f"Signature expired: {stamp} is now earlier than "
                                    f"{(now - datetime.timedelta(seconds=SKEW_SECONDS)).strftime(_STAMP)} "
                                    f"({now.strftime(_STAMP)} - 15 min.)")
        expected = self._signature(handler, split, query_pairs, fields, stamp, scope_service, api, body, presigned)
        if expected is None or not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
            raise Refused(api, bad, _MISMATCH if api != "s3" else
                          "The request signature we calculated does not match the signature you provided. Check "
                          "your key and signing method.")

    def _check_v2_query(self, handler, split, query: dict) -> None:
        """S3's older presigned URL (what boto3's generate_presigned_url makes by default): SigV2's
        ``AWSAccessKeyId``, ``Expires`` (epoch seconds) and ``Signature``, recomputed with
        botocore's HmacV1QueryAuth. SigV2 names no region."""
        from botocore.auth import HmacV1QueryAuth  # noqa: PLC0415
        from botocore.awsrequest import HTTPHeaders  # noqa: PLC0415
        from botocore.credentials import Credentials  # noqa: PLC0415

        if not hmac.compare_digest(query["AWSAccessKeyId"].encode(), self.access_key.encode()):
            raise Refused("s3", "InvalidAccessKeyId", _UNKNOWN_KEY["s3"])
        expires = query.get("Expires", "")
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        if not expires.isdigit() or not now <= int(expires) <= now + MAX_EXPIRES + SKEW_SECONDS:
            raise Refused("s3", "AccessDenied", "Request has expired")
        signer = HmacV1QueryAuth(Credentials(self.access_key, self.secret_key))
        signer._get_date = lambda: expires  # noqa: SLF001 - the Date line of a presigned URL is its Expires
        headers = HTTPHeaders()
        for name, value in handler.headers.items():
            if name.lower() in ("content-md5", "content-type") or name.lower().startswith("x-amz-"):
                headers[name] = value
        expected = signer.sign_string(signer.canonical_string(handler.command, split, headers))
        if not hmac.compare_digest(expected.encode(), query["Signature"].encode()):
            raise Refused("s3", "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                         "signature you provided. Check your key and signing method.")

    @staticmethod
    def _moment(api: str, stamp: str, day: str, bad: str) -> datetime.datetime:
        try:
            moment = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise Refused(api, bad if api != "s3" else "AccessDenied",
                          "The request needs an X-Amz-Date of the form YYYYMMDDTHHMMSSZ.") from None
        if stamp[:8] != day:
            raise Refused(api, bad, "The credential's date is not the date of X-Amz-Date.")
        return moment

    def _signature(self, handler, split, query_pairs, fields, stamp, service, api, body, presigned) -> str | None:
        """The signature botocore's signer computes for this request, or None when the headers the
        client says it signed are not all there."""
        from botocore import auth as signers  # noqa: PLC0415 - botocore only when a request comes
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415
        from botocore.credentials import Credentials  # noqa: PLC0415

        names = fields["SignedHeaders"].split(";")
        headers = {}
        for name in names:
            values = handler.headers.get_all(name)
            if values is None:
                return None
            headers[name] = ",".join(values) if len(values) > 1 else values[0]
        if presigned:
            kept = [pair for pair in query_pairs if pair.partition("=")[0] != "X-Amz-Signature"]
            cls = signers.S3SigV4QueryAuth if api == "s3" else signers.SigV4QueryAuth
        else:
            kept = query_pairs
            cls = signers.S3SigV4Auth if api == "s3" else signers.SigV4Auth
        if body is not None and "x-amz-content-sha256" in (n.lower() for n in names):
            declared = handler.headers.get("X-Amz-Content-SHA256", "")
            if declared != hashlib.sha256(body).hexdigest():  # a JSON or STS body is always hashed
                return None
        url = urllib.parse.urlunsplit(("http", "serve", split.path, "&".join(kept), ""))
        request = AWSRequest(method=handler.command, url=url, headers=headers, data=body or b"")
        request.context["timestamp"] = stamp
        signer = cls(Credentials(self.access_key, self.secret_key), service, self.region)
        if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(names)):
            return None
        canonical = signer.canonical_request(request)
        return signer.signature(signer.string_to_sign(request, canonical), request)
