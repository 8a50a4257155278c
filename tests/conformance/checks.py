"""Sending a case and judging the answer by the model: a success must validate against the output shape
(and parse with botocore); an error must be a 4xx with a modelled or common code and a message."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from botocore.model import OperationModel

import harness
import models
import shapes
import wire
from cases import CLIENT_ERROR, EITHER, SUCCESS, Case, Request


class ServerNonConformance(AssertionError):
    """The server answered against the model; carries the exchange (exact request and response)."""

    def __init__(self, case_id: str, problem: str, exchange: wire.Exchange):
        self.case_id = case_id
        self.problem = problem
        self.exchange = exchange
        super().__init__(f"{case_id}: {problem}\n{exchange.describe()}")


def send(server: harness.SkiffServer, operation: OperationModel, request: Request) -> wire.Exchange:
    if models.is_query_like(operation):
        if request.raw is not None:
            fields = urllib.parse.parse_qsl(request.raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
            if request.form_overrides:
                body = _apply_overrides(fields, request.form_overrides)
            else:
                body = request.raw
        else:
            fields = list(wire.query_params(operation, request.payload or {}).items())
            body = _apply_overrides(fields, request.form_overrides)
        kw = {"content_type": request.content_type} if request.content_type else {}
        return wire.call_query(server, operation, raw_body=body, **kw)
    body = request.raw if request.raw is not None else json.dumps(request.payload or {}).encode()
    return wire.call_json(server, operation, body)


def _apply_overrides(fields: list[tuple[str, str]], overrides: dict[str, Any]) -> bytes:
    out = [(k, v) for k, v in fields if k not in overrides and not any(k.startswith(o + ".") for o in overrides)]
    out += [(k, v) for k, v in overrides.items() if v is not None]
    return urllib.parse.urlencode(out, encoding="latin-1").encode("latin-1")


def content_type_ok(operation: OperationModel, value: str | None) -> bool:
    value = (value or "").split(";")[0].strip().lower()
    if models.is_query_like(operation):
        return value in ("text/xml", "application/xml")
    version = operation.service_model.metadata.get("jsonVersion", "1.0")
    return value in (f"application/x-amz-json-{version}", "application/json")


def check_success(case_id: str, operation: OperationModel, ex: wire.Exchange) -> None:
    fail = lambda problem: ServerNonConformance(case_id, problem, ex)  # noqa: E731
    if ex.response is None:
        raise fail(f"expected a success, the connection was dropped ({ex.transport_error})")
    r = ex.response
    if r.status != 200:
        raise fail(f"expected HTTP 200, got {r.status} {r.error_code or ''}: {r.error_message}")
    problems: list[str] = []
    if not r.request_id:
        problems.append("no x-amzn-RequestId header")
    if not content_type_ok(operation, r.headers.get("Content-Type")):
        problems.append(f"Content-Type {r.headers.get('Content-Type')!r}")
    if operation.service_model.protocol == "ec2":
        found = shapes.validate_ec2_xml(r.body, operation)
    elif operation.service_model.protocol == "query":
        found = shapes.validate_query_xml(r.body, operation)
    else:
        try:
            value = json.loads(r.body) if r.body.strip() else {}
        except ValueError as e:
            raise fail(f"the body is not JSON: {e}")
        found = shapes.validate_json(value, operation.output_shape)
    problems += [str(p) for p in found]
    if not problems:
        try:
            wire.botocore_parse(operation, r)
        except Exception as e:  # noqa: BLE001 - any parser failure is the finding
            problems.append(f"botocore cannot parse it: {type(e).__name__}: {e}")
    if problems:
        raise fail("the response does not conform to the model:\n  - " + "\n  - ".join(problems))


def check_client_error(case_id: str, operation: OperationModel, ex: wire.Exchange) -> str:
    """Returns the error code."""
    fail = lambda problem: ServerNonConformance(case_id, problem, ex)  # noqa: E731
    if ex.response is None:
        raise fail(f"expected a 4xx, the connection was dropped ({ex.transport_error})")
    r = ex.response
    if r.status == 200:
        raise fail("expected a 4xx, the call succeeded")
    if not 400 <= r.status < 500:
        raise fail(f"expected a 4xx, got HTTP {r.status}")
    parsed = wire.botocore_parse(operation, r)
    code = parsed.get("Error", {}).get("Code") or ""
    message = parsed.get("Error", {}).get("Message") or ""
    problems = []
    allowed = models.allowed_error_codes(operation)
    if not code or code == str(r.status):
        problems.append("botocore finds no error code in it")
    elif code not in allowed:
        modeled = sorted(models.modeled_error_codes(operation))
        problems.append(f"error code {code!r} is neither modelled for {operation.name} {modeled} nor a common error")
    if not message.strip():
        problems.append("empty error message")
    if not r.request_id:
        problems.append("no x-amzn-RequestId header")
    if operation.service_model.protocol == "json":
        header = r.headers.get("x-amzn-ErrorType")
        if header is None or header.split(":")[0].split("#")[-1] != code:
            problems.append(f"x-amzn-ErrorType header {header!r} does not match the code {code!r}")
    elif operation.service_model.protocol == "ec2":
        problems += _ec2_error_envelope(r.body)
    else:
        problems += _query_error_envelope(r.body)
    if problems:
        raise fail("the error does not conform:\n  - " + "\n  - ".join(problems))
    return code


def _query_error_envelope(body: bytes) -> list[str]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [f"the error body is not XML: {e}"]
    local = lambda el: el.tag.split("}")[-1]  # noqa: E731
    problems = []
    if local(root) != "ErrorResponse":
        problems.append(f"the error root element is <{local(root)}>, not <ErrorResponse>")
    errors = [c for c in root if local(c) == "Error"]
    if len(errors) != 1:
        return problems + ["<ErrorResponse> must hold one <Error>"]
    kids = {local(c): (c.text or "") for c in errors[0]}
    if kids.get("Type") not in ("Sender", "Receiver"):
        problems.append(f"<Error><Type> is {kids.get('Type')!r}, not Sender or Receiver")
    if not [c for c in root if local(c) == "RequestId"]:
        problems.append("<ErrorResponse> has no <RequestId>")
    return problems


def _ec2_error_envelope(body: bytes) -> list[str]:
    """EC2's error body: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [f"the error body is not XML: {e}"]
    local = lambda el: el.tag.split("}")[-1]  # noqa: E731
    problems = []
    if local(root) != "Response":
        problems.append(f"the error root element is <{local(root)}>, not <Response> (EC2's error envelope)")
    errors = [c for c in root if local(c) == "Errors"]
    items = [e for e in errors[0] if local(e) == "Error"] if len(errors) == 1 else []
    if len(items) != 1:
        return problems + ["<Response> must hold one <Errors> with one <Error>"]
    kids = {local(c): (c.text or "") for c in items[0]}
    for name in ("Code", "Message"):
        if not kids.get(name, "").strip():
            problems.append(f"<Error><{name}> is missing or empty")
    ids = [c for c in root if local(c) == "RequestID"]
    if len(ids) != 1 or not (ids[0].text or "").strip():
        problems.append("<Response> must hold one non-empty <RequestID> (spelled so)")
    return problems


def run_case(server: harness.SkiffServer, case: Case, world: Any) -> tuple[str, wire.Exchange]:
    """Builds, sends and judges one case. Returns (outcome note, exchange); raises ServerNonConformance."""
    operation = models.operation_model(case.op)
    request = case.build(world)
    ex = send(server, operation, request)
    if case.expect == SUCCESS:
        check_success(case.id, operation, ex)
        return "ok", ex
    if case.expect == CLIENT_ERROR:
        code = check_client_error(case.id, operation, ex)
        return code, ex
    assert case.expect == EITHER
    if ex.response is not None and ex.response.status == 200:
        check_success(case.id, operation, ex)
        return "accepted", ex
    code = check_client_error(case.id, operation, ex)
    return code, ex
