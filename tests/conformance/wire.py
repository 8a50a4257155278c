"""Raw, signed calls to a Skiff server for any modelled operation, so the suite sees the exact bytes on the
wire. Signing is the end-to-end harness's (`harness.sigv4_signature`); this module only knows
how each protocol addresses an operation (JSON: `X-Amz-Target`; query: `Action`/`Version` form fields) and
reads answers the way SDKs do."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional

import botocore.parsers
import botocore.serialize
from botocore.model import OperationModel

import harness  # tests/e2e/harness.py (conftest puts tests/e2e on sys.path)

BODY_EXCERPT = 1500


@dataclass
class Exchange:
    """One request and what came back: a response, or the transport error that replaced it."""

    operation: str
    headers: dict[str, str]
    body: bytes
    response: Optional[harness.RawResponse] = None
    transport_error: Optional[str] = None
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> Optional[int]:
        return self.response.status if self.response is not None else None

    def describe(self) -> str:
        """The exact request and response, for failure messages and the report to the server's authors."""
        body = self.body
        shown = body[:BODY_EXCERPT]
        more = f" … ({len(body)} bytes in all)" if len(body) > BODY_EXCERPT else ""
        lines = ["request:  POST /"]
        lines += [f"          {k}: {v}" for k, v in self.headers.items()]
        lines.append(f"          body: {shown!r}{more}")
        if self.response is None:
            lines.append(f"response: none — {self.transport_error}")
        else:
            r = self.response
            lines.append(f"response: HTTP {r.status}")
            for k in ("Content-Type", "x-amzn-ErrorType", "x-amzn-RequestId"):
                if r.headers.get(k) is not None:
                    lines.append(f"          {k}: {r.headers.get(k)}")
            rb = r.body
            rmore = f" … ({len(rb)} bytes in all)" if len(rb) > BODY_EXCERPT else ""
            lines.append(f"          body: {rb[:BODY_EXCERPT]!r}{rmore}")
        return "\n".join(lines)


TRANSPORT_ERRORS = (http.client.HTTPException, ConnectionError, socket.timeout, OSError)


def json_headers(operation: OperationModel) -> dict[str, str]:
    meta = operation.service_model.metadata
    return {
        "Content-Type": f"application/x-amz-json-{meta.get('jsonVersion', '1.0')}",
        "X-Amz-Target": f"{meta['targetPrefix']}.{operation.name}",
    }


def call_json(server: harness.SkiffServer, operation: OperationModel, body: bytes | Any) -> Exchange:
    """A signed AWS JSON call; `body` is raw bytes or a value to serialise (exactly, no botocore)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = json_headers(operation)
    ex = Exchange(operation.name, dict(headers), raw)
    return _send(server, operation, ex)


def query_params(operation: OperationModel, params: dict[str, Any]) -> dict[str, str]:
    """`params` (the input shape's members) as query-protocol form fields, with Action and Version, by
    botocore's own serializer for the service's protocol (`query`: `X.member.N`; `ec2`: `X.N`, names from
    the capitalised `locationName`), without its parameter validation, so mutated values pass through."""
    protocol = operation.service_model.protocol
    serializer = botocore.serialize.create_serializer(protocol, include_validation=False)
    request = serializer.serialize_to_request(params, operation)
    return {k: str(v) for k, v in request["body"].items()}


def form_name(operation: OperationModel, member: str) -> str:
    """The form field a top-level input member is sent as: its name in the query protocol; in EC2's, its
    `locationName` capitalised when it has one (`dryRun` → `DryRun`, `VpcId` for `VpcIds`), as botocore's
    EC2 serializer names it."""
    shape = operation.input_shape.members[member]
    if operation.service_model.protocol != "ec2":
        return member
    if "queryName" in shape.serialization:
        return shape.serialization["queryName"]
    name = shape.serialization.get("name")
    return name[0].upper() + name[1:] if name else member


def call_query(
    server: harness.SkiffServer,
    operation: OperationModel,
    params: Optional[dict[str, Any]] = None,
    *,
    raw_body: Optional[bytes] = None,
    content_type: str = harness.FORM_CONTENT_TYPE,
) -> Exchange:
    """A signed query-protocol POST: the form encoding of `params` (see `query_params`) or `raw_body`."""
    if raw_body is None:
        raw_body = urllib.parse.urlencode(query_params(operation, params or {})).encode()
    headers = {"Content-Type": content_type}
    ex = Exchange(operation.name, dict(headers), raw_body)
    return _send(server, operation, ex)


def _send(server: harness.SkiffServer, operation: OperationModel, ex: Exchange) -> Exchange:
    """Signs (harness.sigv4_signature, every header signed, as harness.signed_request does) and sends on a
    raw socket. Like urllib3 (botocore) and Go's net/http, a write that fails because the server already
    answered and closed (a refused 3 MiB body) does not lose the answer: the response is read anyway, and
    only a connection that ends without one counts as dropped."""
    date = harness.amz_date()
    headers = {"Host": server.address, "X-Amz-Date": date, **ex.headers}
    names = sorted(k.lower() for k in headers)
    signature = harness.sigv4_signature(
        method="POST",
        path="/",
        query=[],
        headers=headers,
        signed_headers=names,
        payload_hash=hashlib.sha256(ex.body).hexdigest(),
        amz_date=date,
        secret=server.secret_access_key,
        region=harness.REGION,
        service=operation.service_model.signing_name,
    )
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{date[:8]}/{harness.REGION}/"
        f"{operation.service_model.signing_name}/aws4_request, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    headers["Content-Length"] = str(len(ex.body))
    head = ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    try:
        sock = socket.create_connection((server.host, server.port), timeout=30)
    except OSError as e:
        ex.transport_error = f"cannot connect: {type(e).__name__}: {e}"
        return ex
    try:
        try:
            sock.sendall(head)
            view = memoryview(ex.body)
            for i in range(0, len(view), 1 << 16):
                sock.sendall(view[i : i + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError) as e:
            ex.notes.append(f"the server closed before reading the whole body ({type(e).__name__})")
        resp = http.client.HTTPResponse(sock, method="POST")
        try:
            resp.begin()
            body = resp.read()
        except TRANSPORT_ERRORS as e:
            ex.transport_error = f"{type(e).__name__}: {e}" + (f" ({'; '.join(ex.notes)})" if ex.notes else "")
            return ex
        ex.response = harness.RawResponse(resp.status, resp.headers, body)
    finally:
        sock.close()
    return ex


def botocore_parse(operation: OperationModel, response: harness.RawResponse) -> dict:
    """What botocore makes of the response (its parser for the service's protocol), as a client sees it."""
    parser = botocore.parsers.create_parser(operation.service_model.protocol)
    headers = {k.lower(): v for k, v in response.headers.items()}
    return parser.parse(
        {"status_code": response.status, "headers": headers, "body": response.body},
        operation.output_shape,
    )
