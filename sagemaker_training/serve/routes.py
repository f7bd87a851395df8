"""The server's one port: which AWS service a request is for, and its answer.

The order is the one the SDKs need (measured): ``X-Amz-Target`` picks
SageMaker (``SageMaker.<Operation>``) or CloudWatch Logs
(``Logs_20140328.<Operation>``) before anything else; otherwise the SigV4
credential scope (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``, in the
Authorization header or a presigned URL's query) names the service: ``sts``
is answered here, anything else is S3, path-style, forwarded to the S3
endpoint. Before any of that, auth.py checks the request's SigV4 signature
against the server's key (in the answer's shape of the API it reaches); the
region of a request is then the server's.

Nothing here logs a header or a body: with ``--verbose`` a line per request
names the service, the operation (or the method and path without its query)
and the status.
"""

from __future__ import annotations

import http.server
import re
import sys
import urllib.parse

from . import auth, bodies, listener, protocol, s3, s3_keys, sts

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


def credential_scope(handler) -> tuple[str | None, str | None]:
    """(region, service) from the request's SigV4 credential scope, or (None, None)."""
    match = _SCOPE.search(handler.headers.get("Authorization", ""))
    if match:
        return match.group(1), match.group(2)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    credential = (query.get("X-Amz-Credential") or [""])[0]
    match = _QUERY_SCOPE.fullmatch(credential)
    return (match.group(1), match.group(2)) if match else (None, None)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sagemaker-training-serve"
    sys_version = ""
    app = None  # set by make_server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # the base class would log every request line; see _note

    def _note(self, service: str, what: str, status: int) -> None:
        if self.app.verbose:
            sys.stderr.write(f"sagemaker-training serve: {service} {what} -> {status}\n")
            sys.stderr.flush()

    def _body(self) -> bytes:
        return bodies.read_all(self.rfile, self.headers)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "serve")
        self.end_headers()
        self.wfile.write(body)

    def _json_api(self, target: str, region: str | None, raw: bytes) -> None:
        prefix, _, operation = target.partition(".")
        service = {"SageMaker": self.app.sagemaker, "Logs_20140328": self.app.logs}.get(prefix)
        try:
            if service is None:
                raise protocol.ApiError("UnknownOperationException", f"Unknown service target {prefix!r}.")
            params = protocol.parse_body(raw)
            answer = service.call(operation, params, region or self.app.region,
                                  agent=self.headers.get("User-Agent", ""))
            status, body = 200, protocol.encode(answer)
        except protocol.ApiError as exc:
            status, body = exc.status, exc.body()
        except (bodies.BadBody, TimeoutError, ConnectionError):
            raise  # the body could not be read: _route answers and ends the connection
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer, in AWS's shape
            status = 500
            body = protocol.ApiError("InternalFailure", f"sagemaker-training serve failed: "
                                                        f"{type(exc).__name__}: {exc}", 500).body()
            sys.stderr.write(f"sagemaker-training serve: {target} failed: {type(exc).__name__}: {exc}\n")
        self._answer(status, body, "application/x-amz-json-1.1")
        self._note(prefix, operation, status)

    def _route(self) -> None:
        """Answer one request; a body that cannot be read is a 4xx in the service's shape and
        ends the connection (its stream's position is lost)."""
        try:
            self._dispatch()
        except bodies.BadBody as exc:
            self.close_connection = True
            self._refuse(exc.status, "ValidationException" if exc.status != 413 else "RequestEntityTooLarge",
                         exc.message)
            exc.drain(self.rfile)
        except TimeoutError:
            self.close_connection = True
            self._refuse(400, "RequestTimeout", f"the request was not read within {self.timeout:g}s of silence "
                                                "(the server's read timeout)")
        except ConnectionError:
            self.close_connection = True

    def _refuse(self, status: int, code: str, message: str) -> None:
        """An error before the request reached a service: JSON 1.1 with X-Amz-Target, S3's XML otherwise."""
        self._note("http", f"{self.command} refused", status)
        try:
            if self.headers.get("X-Amz-Target"):
                body = protocol.ApiError(code, message, status).body()
                self._answer(status, body, "application/x-amz-json-1.1")
            else:
                self._answer(status, s3.error_xml(code, message), "application/xml")
        except OSError:
            pass

    def _dispatch(self) -> None:
        region, service = credential_scope(self)
        target = self.headers.get("X-Amz-Target")
        api, signed_for = auth.api_of(target, service)
        body = None if api == "s3" else self._body()
        try:
            self.app.verifier.check(self, api, signed_for, body)
            if api == "s3":
                s3_keys.check(self.path, self.headers)
        except (auth.Refused, s3_keys.Refused) as refused:
            status, answer, content_type = refused.answer()
            self.close_connection = True  # an S3 body may follow, unread
            self._answer(status, b"" if self.command == "HEAD" else answer, content_type)
            self._note(api, "refused", status)
            return
        if target:
            self._json_api(target, region, body)
        elif api == "sts":
            path = urllib.parse.urlsplit(self.path)
            status, body = sts.call(body, path.query)
            self._answer(status, body, "text/xml")
            self._note("sts", "", status)
        elif self.app.s3_endpoint:
            try:
                status = s3.forward(self, self.app.s3_endpoint, embedded=self.app.s3_embedded)
                if status < 300 and self.app.on_s3_delete and (self.command == "DELETE" or (
                        self.command == "POST" and "delete" in urllib.parse.parse_qs(
                            urllib.parse.urlsplit(self.path).query, keep_blank_values=True))):
                    self.app.on_s3_delete()  # the embedded S3 reclaims the space
                self._note("s3", f"{self.command} {urllib.parse.urlsplit(self.path).path}", status)
            except s3.Unreachable as exc:
                self.close_connection = True
                self._answer(502, f"<Error><Code>ServiceUnavailable</Code><Message>the S3 endpoint "
                                  f"{self.app.s3_endpoint} did not answer: {exc}</Message></Error>".encode(),
                             "application/xml")
        else:
            self._answer(400, b"<Error><Code>InvalidRequest</Code><Message>no S3 endpoint behind this server"
                              b"</Message></Error>", "application/xml")

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _route  # noqa: N815 - http.server's names


class App:
    """What the handler needs: the services, the S3 endpoint and the key's verifier (auth.Verifier)."""

    def __init__(self, sagemaker, logs, s3_endpoint: str | None, region: str, verifier, verbose: bool = False,
                 s3_embedded: bool = True, on_s3_delete=None):
        self.sagemaker, self.logs, self.verifier = sagemaker, logs, verifier
        self.on_s3_delete = on_s3_delete
        self.s3_endpoint, self.s3_embedded = s3_endpoint, s3_embedded
        self.region = region
        self.verbose = verbose


def make_server(host: str, port: int, app: App, max_connections: int = listener.MAX_CONNECTIONS,
                read_timeout: float = listener.READ_TIMEOUT) -> listener.BoundedServer:
    handler = type("BoundHandler", (Handler,), {"app": app, "timeout": read_timeout})
    return listener.BoundedServer((host, port), handler, max_connections)
