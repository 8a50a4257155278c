"""Validation of raw AWS responses against botocore output shapes.

Two entry points, one per wire protocol:

* `validate_json(value, shape)` — the parsed body of an AWS JSON 1.0/1.1 response;
* `validate_query_xml(body, operation_model)` — the XML body of a query-protocol response
  (`<OpResponse><OpResult>…</OpResult><ResponseMetadata>…</ResponseMetadata></OpResponse>`);
* `validate_ec2_xml(body, operation_model)` — the XML body of a response in EC2's dialect
  (`<OpResponse xmlns=…><requestId>…</requestId>…members…</OpResponse>`: no Result wrapper, members by
  their `locationName`, lists of `<item>`).

Each returns a list of `Problem`s (empty when the response conforms); `check_json` / `check_query_xml` raise
`ShapeError` listing every problem with its path. What is checked, for every value at every depth:

* structures: only modelled member names (exact case), every `required` member present, no JSON `null`s,
  unions with exactly one member set;
* strings: the type, enum values (when the model has an enum), `min`/`max` length (in code points);
* integer/long: integral numbers (booleans are not numbers) inside the 32/64-bit range and the modelled
  `min`/`max`; float/double: numbers; boolean: booleans;
* timestamps: JSON numbers (epoch seconds) unless the shape says `timestampFormat: iso8601`; in XML ISO 8601
  (or what the shape's `timestampFormat` says);
* blobs: base64 text; lists and maps: the container type, `min`/`max` entry counts, every element/key/value.
  An empty list or map passes a `min`: models share shapes between input and output, and AWS services answer
  "none" with an empty collection where the input side needs at least one (ECR's BatchDeleteImage `imageIds`).

`pattern`s are not checked: they are Java regular expressions (`\\u10000-\\u10FFFF` and friends) that Python's
`re` does not read the same way.

Expectations come from the botocore model only, never from what a server returns.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Optional

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# ISO 8601 as AWS writes it (and as botocore and the Go SDK read it): date, 'T', time, optional fraction,
# and 'Z' or an offset.
ISO8601_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
)
# RFC 822 / IMF-fixdate, for shapes whose timestampFormat is rfc822.
RFC822_RE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} (GMT|UTC|[+-]\d{4})$")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ShapeError(AssertionError):
    """A response that does not conform to its output shape; `problems` has every violation."""

    def __init__(self, what: str, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what} does not conform to the model ({len(problems)} problem(s)):\n{lines}")


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _timestamp_format(shape: Shape, default: str) -> str:
    return shape.serialization.get("timestampFormat") or shape.metadata.get("timestampFormat") or default


def _check_length(problems: list[Problem], path: str, shape: Shape, length: int, unit: str) -> None:
    lo = shape.metadata.get("min")
    hi = shape.metadata.get("max")
    empty_collection = length == 0 and unit in ("list of", "map of")
    if lo is not None and length < lo and not empty_collection:
        problems.append(Problem(path, f"{unit} {length} is under the model's min {lo} ({shape.name})"))
    if hi is not None and length > hi:
        problems.append(Problem(path, f"{unit} {length} is over the model's max {hi} ({shape.name})"))


def _check_string_value(problems: list[Problem], path: str, shape: Shape, value: str) -> None:
    enum = shape.metadata.get("enum") or []
    if enum and value not in enum:
        problems.append(Problem(path, f"{_short(value)} is not a value of enum {shape.name} {enum}"))
    _check_length(problems, path, shape, len(value), "length")


def _check_integer_value(problems: list[Problem], path: str, shape: Shape, value: int) -> None:
    lo, hi = INT64 if shape.type_name == "long" else INT32
    if not lo <= value <= hi:
        problems.append(Problem(path, f"{value} does not fit a {shape.type_name} ({shape.name})"))
    mlo = shape.metadata.get("min")
    mhi = shape.metadata.get("max")
    if mlo is not None and value < mlo:
        problems.append(Problem(path, f"{value} is under the model's min {mlo} ({shape.name})"))
    if mhi is not None and value > mhi:
        problems.append(Problem(path, f"{value} is over the model's max {mhi} ({shape.name})"))


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------
# AWS JSON 1.0 / 1.1


def validate_json(value: Any, shape: Optional[Shape], path: str = "$") -> list[Problem]:
    """Every way `value` (a parsed JSON response body) strays from `shape`. `shape=None` (an operation
    without output) accepts only `{}`."""
    problems: list[Problem] = []
    if shape is None:
        if value != {}:
            problems.append(Problem(path, f"the operation has no output shape, expected {{}}, got {_short(value)}"))
        return problems
    _json(problems, value, shape, path)
    return problems


def check_json(value: Any, shape: Optional[Shape], what: str = "response") -> None:
    problems = validate_json(value, shape)
    if problems:
        raise ShapeError(what, problems)


def _json(problems: list[Problem], value: Any, shape: Shape, path: str) -> None:
    t = shape.type_name
    if value is None:
        problems.append(Problem(path, f"null where {t} {shape.name} is expected (omit the member instead)"))
        return
    if t == "structure":
        assert isinstance(shape, StructureShape)
        if shape.metadata.get("document"):
            return  # a document: any JSON
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected an object ({shape.name}), got {_type_of(value)} {_short(value)}"))
            return
        members = shape.members
        for name, member_value in value.items():
            if name not in members:
                near = [m for m in members if m.lower() == name.lower()]
                hint = f" (the model spells it {near[0]!r})" if near else ""
                problems.append(Problem(f"{path}.{name}", f"member not defined by {shape.name}{hint}"))
                continue
            _json(problems, member_value, members[name], f"{path}.{name}")
        for name in shape.required_members:
            if name not in value:
                problems.append(Problem(f"{path}.{name}", f"required member of {shape.name} is missing"))
        if shape.metadata.get("union"):
            set_members = [k for k, v in value.items() if v is not None and k in members]
            if len(set_members) != 1:
                problems.append(Problem(path, f"union {shape.name} must have exactly one member set, has {set_members}"))
    elif t == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            problems.append(Problem(path, f"expected an array ({shape.name}), got {_type_of(value)} {_short(value)}"))
            return
        _check_length(problems, path, shape, len(value), "list of")
        for i, item in enumerate(value):
            _json(problems, item, shape.member, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected an object ({shape.name} map), got {_type_of(value)} {_short(value)}"))
            return
        _check_length(problems, path, shape, len(value), "map of")
        for k, v in value.items():
            _check_string_value(problems, f"{path}<key {k!r}>", shape.key, k)
            _json(problems, v, shape.value, f"{path}[{k!r}]")
    elif t == "string":
        if not isinstance(value, str):
            problems.append(Problem(path, f"expected a string ({shape.name}), got {_type_of(value)} {_short(value)}"))
            return
        _check_string_value(problems, path, shape, value)
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(Problem(path, f"expected an {t} ({shape.name}), got {_type_of(value)} {_short(value)}"))
            return
        _check_integer_value(problems, path, shape, value)
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(Problem(path, f"expected a number ({shape.name}), got {_type_of(value)} {_short(value)}"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(path, f"{value} is not a finite number ({shape.name})"))
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(Problem(path, f"expected a boolean ({shape.name}), got {_type_of(value)} {_short(value)}"))
    elif t == "timestamp":
        fmt = _timestamp_format(shape, "unixTimestamp")
        if fmt == "unixTimestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(
                    Problem(
                        path,
                        f"timestamp ({shape.name}) must be a JSON number of epoch seconds, got "
                        f"{_type_of(value)} {_short(value)}",
                    )
                )
            elif not math.isfinite(value) or value < 0:
                problems.append(Problem(path, f"timestamp {value} is not a plausible epoch-seconds value"))
        else:
            _check_text_timestamp(problems, path, shape, value, fmt)
    elif t == "blob":
        if not isinstance(value, str) or not _is_base64(value):
            problems.append(Problem(path, f"expected base64 text ({shape.name} blob), got {_short(value)}"))
        else:
            _check_length(problems, path, shape, len(base64.b64decode(value)), "blob of bytes")
    else:
        problems.append(Problem(path, f"the validator does not know shape type {t!r} ({shape.name})"))


def _check_text_timestamp(problems: list[Problem], path: str, shape: Shape, value: Any, fmt: str) -> None:
    if not isinstance(value, str):
        problems.append(Problem(path, f"timestamp ({shape.name}, {fmt}) must be text, got {_type_of(value)} {_short(value)}"))
        return
    if fmt == "iso8601":
        ok = bool(ISO8601_RE.match(value))
        if ok:
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                ok = False
    elif fmt == "rfc822":
        ok = bool(RFC822_RE.match(value))
    elif fmt == "unixTimestamp":
        try:
            ok = math.isfinite(float(value))
        except ValueError:
            ok = False
    else:
        ok = False
    if not ok:
        problems.append(Problem(path, f"{_short(value)} is not a {fmt} timestamp ({shape.name})"))


# ---------------------------------------------------------------------------------------------------------
# the query protocol (XML responses)


def _local(tag: str) -> str:
    return tag.split("}", 1)[-1]


def _ns(tag: str) -> Optional[str]:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else None


def validate_query_xml(body: bytes | str, operation: OperationModel) -> list[Problem]:
    """Every way the XML body of a successful query-protocol response strays from the operation's model:
    the envelope (`<{Op}Response xmlns=…>`, `<{Op}Result>` when the output shape has a result wrapper,
    `<ResponseMetadata><RequestId>`) and the result against the output shape."""
    problems: list[Problem] = []
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [Problem("/", f"not well-formed XML: {e}")]
    op = operation.name
    want_root = f"{op}Response"
    path = f"/{_local(root.tag)}"
    if _local(root.tag) != want_root:
        problems.append(Problem(path, f"root element must be <{want_root}>"))
        return problems
    xmlns = operation.service_model.metadata.get("xmlNamespace")
    if xmlns and _ns(root.tag) != xmlns:
        problems.append(Problem(path, f"namespace {_ns(root.tag)!r}, the model's is {xmlns!r}"))
    output = operation.output_shape
    wrapper = output.serialization.get("resultWrapper") if output is not None else None
    seen: dict[str, int] = {}
    for child in root:
        name = _local(child.tag)
        seen[name] = seen.get(name, 0) + 1
        cpath = f"{path}/{name}"
        if name == "ResponseMetadata":
            ids = [c for c in child if _local(c.tag) == "RequestId"]
            if len(ids) != 1 or not (ids[0].text or "").strip():
                problems.append(Problem(cpath, "must hold exactly one non-empty <RequestId>"))
            for c in child:
                if _local(c.tag) != "RequestId":
                    problems.append(Problem(f"{cpath}/{_local(c.tag)}", "element not defined in ResponseMetadata"))
        elif wrapper and name == wrapper:
            _xml(problems, child, output, cpath)
        else:
            problems.append(Problem(cpath, "element not defined by the model (expected "
                                           f"{'<' + wrapper + '> and ' if wrapper else ''}<ResponseMetadata>)"))
    for name, count in seen.items():
        if count > 1:
            problems.append(Problem(f"{path}/{name}", f"appears {count} times"))
    if wrapper and wrapper not in seen:
        problems.append(Problem(f"{path}/{wrapper}", "the result element is missing"))
    if "ResponseMetadata" not in seen:
        problems.append(Problem(f"{path}/ResponseMetadata", "missing (it carries the RequestId)"))
    return problems


def check_query_xml(body: bytes | str, operation: OperationModel, what: str = "response") -> None:
    problems = validate_query_xml(body, operation)
    if problems:
        raise ShapeError(what, problems)


def validate_ec2_xml(body: bytes | str, operation: OperationModel) -> list[Problem]:
    """Every way the XML body of a successful EC2 response strays from the operation's model: the root
    `<{Op}Response>` in the model's namespace (EC2 writes it with a trailing slash, the model without; both
    are accepted), exactly one non-empty `<requestId>`, and the output members directly under the root."""
    problems: list[Problem] = []
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [Problem("/", f"not well-formed XML: {e}")]
    want_root = f"{operation.name}Response"
    path = f"/{_local(root.tag)}"
    if _local(root.tag) != want_root:
        problems.append(Problem(path, f"root element must be <{want_root}>"))
        return problems
    xmlns = operation.service_model.metadata.get("xmlNamespace")
    if xmlns and (_ns(root.tag) or "").rstrip("/") != xmlns.rstrip("/"):
        problems.append(Problem(path, f"namespace {_ns(root.tag)!r}, the model's is {xmlns!r}"))
    ids = [c for c in root if _local(c.tag) == "requestId"]
    if len(ids) != 1 or not (ids[0].text or "").strip() or len(ids[0]):
        problems.append(Problem(f"{path}/requestId", "must appear exactly once, holding the request id as text"))
    members = ET.Element(root.tag)
    members.text = root.text
    members.extend(c for c in root if _local(c.tag) != "requestId")
    output = operation.output_shape
    if output is None:
        for c in members:
            problems.append(Problem(f"{path}/{_local(c.tag)}", f"{operation.name} has no output members"))
    else:
        _xml(problems, members, output, path)
    return problems


def check_ec2_xml(body: bytes | str, operation: OperationModel, what: str = "response") -> None:
    problems = validate_ec2_xml(body, operation)
    if problems:
        raise ShapeError(what, problems)


def _member_xml_name(name: str, member: Shape) -> str:
    return member.serialization.get("name") or name


def _xml(problems: list[Problem], el: ET.Element, shape: Shape, path: str) -> None:
    t = shape.type_name
    if t == "structure":
        assert isinstance(shape, StructureShape)
        by_xml_name: dict[str, tuple[str, Shape]] = {}
        flattened: set[str] = set()
        for name, member in shape.members.items():
            if member.serialization.get("xmlAttribute"):
                continue
            if member.type_name in ("list", "map") and member.serialization.get("flattened"):
                xml_name = member.serialization.get("name") or (
                    member.member.serialization.get("name") if member.type_name == "list" else None
                ) or name
                flattened.add(xml_name)
            else:
                xml_name = _member_xml_name(name, member)
            by_xml_name[xml_name] = (name, member)
        if (el.text or "").strip():
            problems.append(Problem(path, f"structure {shape.name} holds text {_short(el.text.strip())}"))
        counts: dict[str, int] = {}
        present: set[str] = set()
        flat_items: dict[str, list[ET.Element]] = {}
        for child in el:
            cname = _local(child.tag)
            cpath = f"{path}/{cname}"
            if cname not in by_xml_name:
                near = [n for n in by_xml_name if n.lower() == cname.lower()]
                hint = f" (the model spells it {near[0]!r})" if near else ""
                problems.append(Problem(cpath, f"element not defined by {shape.name}{hint}"))
                continue
            member_name, member = by_xml_name[cname]
            present.add(member_name)
            if cname in flattened:
                flat_items.setdefault(cname, []).append(child)
                continue
            counts[cname] = counts.get(cname, 0) + 1
            if counts[cname] == 2:
                problems.append(Problem(cpath, f"member {member_name} of {shape.name} appears more than once"))
            _xml(problems, child, member, cpath)
        for cname, items in flat_items.items():
            member = by_xml_name[cname][1]
            _xml_flat(problems, items, member, f"{path}/{cname}")
        for name in shape.required_members:
            if name not in present:
                xml_name = _member_xml_name(name, shape.members[name])
                problems.append(Problem(f"{path}/{xml_name}", f"required member of {shape.name} is missing"))
        if shape.metadata.get("union") and len(present) != 1:
            problems.append(Problem(path, f"union {shape.name} must have exactly one member set, has {sorted(present)}"))
    elif t == "list":
        assert isinstance(shape, ListShape)
        if (el.text or "").strip():
            problems.append(Problem(path, f"list {shape.name} holds text {_short(el.text.strip())}"))
        item_name = shape.member.serialization.get("name") or "member"
        items = []
        for child in el:
            cname = _local(child.tag)
            if cname != item_name:
                problems.append(Problem(f"{path}/{cname}", f"list {shape.name} items must be <{item_name}> elements"))
                continue
            items.append(child)
        _check_length(problems, path, shape, len(items), "list of")
        for i, child in enumerate(items, 1):
            _xml(problems, child, shape.member, f"{path}/{item_name}[{i}]")
    elif t == "map":
        assert isinstance(shape, MapShape)
        key_name = shape.key.serialization.get("name") or "key"
        value_name = shape.value.serialization.get("name") or "value"
        entries = []
        for child in el:
            if _local(child.tag) != "entry":
                problems.append(Problem(f"{path}/{_local(child.tag)}", f"map {shape.name} items must be <entry> elements"))
                continue
            entries.append(child)
        _check_length(problems, path, shape, len(entries), "map of")
        for i, entry in enumerate(entries, 1):
            _xml_entry(problems, entry, shape, key_name, value_name, f"{path}/entry[{i}]")
    else:
        if len(el):
            problems.append(Problem(path, f"{t} {shape.name} must be text, has child elements"))
            return
        _xml_scalar(problems, el.text or "", shape, path)


def _xml_flat(problems: list[Problem], items: list[ET.Element], shape: Shape, path: str) -> None:
    if shape.type_name == "list":
        assert isinstance(shape, ListShape)
        _check_length(problems, path, shape, len(items), "list of")
        for i, child in enumerate(items, 1):
            _xml(problems, child, shape.member, f"{path}[{i}]")
    else:
        assert isinstance(shape, MapShape)
        _check_length(problems, path, shape, len(items), "map of")
        key_name = shape.key.serialization.get("name") or "key"
        value_name = shape.value.serialization.get("name") or "value"
        for i, entry in enumerate(items, 1):
            _xml_entry(problems, entry, shape, key_name, value_name, f"{path}[{i}]")


def _xml_entry(problems, entry: ET.Element, shape: MapShape, key_name: str, value_name: str, path: str) -> None:
    keys = [c for c in entry if _local(c.tag) == key_name]
    values = [c for c in entry if _local(c.tag) == value_name]
    for c in entry:
        if _local(c.tag) not in (key_name, value_name):
            problems.append(Problem(f"{path}/{_local(c.tag)}", f"map entry elements are <{key_name}> and <{value_name}>"))
    if len(keys) != 1:
        problems.append(Problem(path, f"a map entry needs exactly one <{key_name}>"))
    else:
        _xml_scalar(problems, keys[0].text or "", shape.key, f"{path}/{key_name}")
    if len(values) != 1:
        problems.append(Problem(path, f"a map entry needs exactly one <{value_name}>"))
    else:
        _xml(problems, values[0], shape.value, f"{path}/{value_name}")


_XML_INT_RE = re.compile(r"^[+-]?\d+$")


def _xml_scalar(problems: list[Problem], text: str, shape: Shape, path: str) -> None:
    t = shape.type_name
    if t == "string":
        _check_string_value(problems, path, shape, text)
    elif t in ("integer", "long"):
        if not _XML_INT_RE.match(text.strip()):
            problems.append(Problem(path, f"expected an {t} ({shape.name}), got {_short(text)}"))
            return
        _check_integer_value(problems, path, shape, int(text))
    elif t in ("float", "double"):
        try:
            float(text)
        except ValueError:
            problems.append(Problem(path, f"expected a number ({shape.name}), got {_short(text)}"))
    elif t == "boolean":
        if text not in ("true", "false"):
            problems.append(Problem(path, f"expected true or false ({shape.name}), got {_short(text)}"))
    elif t == "timestamp":
        _check_text_timestamp(problems, path, shape, text, _timestamp_format(shape, "iso8601"))
    elif t == "blob":
        if not _is_base64(text.strip()):
            problems.append(Problem(path, f"expected base64 text ({shape.name} blob), got {_short(text)}"))
    else:
        problems.append(Problem(path, f"the validator does not know shape type {t!r} ({shape.name})"))
