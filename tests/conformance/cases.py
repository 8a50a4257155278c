"""The generated cases: for every implemented operation, well-formed calls built from its input shape and
mutated calls built from those, each with what the model says must come back.

Kinds (the second part of a case id `service.Operation.kind[.detail]`):

  wellformed, wellformed.full, optional.M     must succeed; the response must validate against the output
                                              shape (minimal call / every optional member with a fixture /
                                              one optional member at a time)
  missing.P     required member P removed (top-level, and inside nested structures)    must be a 4xx
  type.P        member P given a value of the wrong type (every top-level member of the
                model; JSON: also every nested value of the full call)                  must be a 4xx
  enum.P        enum value P replaced by one the model does not list                    must be a 4xx
  length.P.over|under   string/list/map P one past its modelled max / under its min     must be a 4xx
  range.P.over|under    number P one past its modelled max / under its min              must be a 4xx
  body.*        a body that is not JSON / not a form, invalid UTF-8, 3 MiB, …           must be a 4xx
  ref.M.V       reference member M pointing at something that does not exist, at the wrong kind of
                resource, or at the resource in another account                         must be a 4xx
  nul.P         a NUL inside string P                                  a 4xx, or a success that validates
  unknown-member  a member the model does not define                   a 4xx, or a success that validates

(The model does not forbid NULs or, for the query protocols, unknown parameters, so those may succeed; the
coverage report lists the ones the server accepted.)

"must be a 4xx" means: HTTP 400–499, never 5xx, never a dropped connection, an error code the model lists
for the operation or a common AWS error (models.COMMON_ERRORS), and a non-empty message.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Union

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

import fixtures
import models
from models import Implemented

SUCCESS = "success"
CLIENT_ERROR = "client-error"
EITHER = "client-error-or-valid-success"

HUGE_BYTES = 3 * 1024 * 1024
UNKNOWN_ENUM = "CONFORMANCE_NOT_A_MODELED_VALUE"
INVALID_UTF8_MARK = "CONFORMANCE-INVALID-UTF8"

PathT = tuple[Union[str, int], ...]


@dataclass
class Request:
    """What to send: a payload (the input members; JSON-serialised or form-encoded by protocol) or a raw
    body, and for the query protocols (query, ec2) optional form-field overrides (applied after encoding)."""

    payload: Optional[dict] = None
    raw: Optional[bytes] = None
    content_type: Optional[str] = None
    form_overrides: dict[str, Optional[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    op: Implemented
    name: str
    expect: str
    description: str
    build: Callable[[Any], Request] = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.op.id}.{self.name}"

    @property
    def kind(self) -> str:
        if self.name.startswith("wellformed") or self.name.startswith("optional."):
            return "wellformed"
        return "mutated"


# ---------------------------------------------------------------------------------------------------------
# paths into payloads


def fmt_path(path: PathT) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def get_at(obj: Any, path: PathT) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def set_at(obj: Any, path: PathT, value: Any) -> None:
    get_at(obj, path[:-1])[path[-1]] = value


def del_at(obj: Any, path: PathT) -> None:
    del get_at(obj, path[:-1])[path[-1]]


def walk(value: Any, shape: Shape, path: PathT = ()) -> Iterator[tuple[PathT, Shape, Any]]:
    """Every node of a payload with its shape (the root included), depth first."""
    yield path, shape, value
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, v in value.items():
            if name in shape.members:
                yield from walk(v, shape.members[name], path + (name,))
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, shape.member, path + (i,))
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, shape.value, path + (k,))


# ---------------------------------------------------------------------------------------------------------
# mutated values


def wrong_type_json(shape: Shape) -> Any:
    return {
        "string": 12345,
        "integer": "12",
        "long": "12",
        "float": "1.5",
        "double": "1.5",
        "boolean": "true",
        "timestamp": "2024-01-01T00:00:00Z",
        "blob": 12345,
        "list": "not-a-list",
        "map": ["not", "a", "map"],
        "structure": ["not-a-structure"],
    }[shape.type_name]


# In the query protocol every value is text: only numbers, booleans and timestamps can have a wrong type.
WRONG_TYPE_QUERY = {
    "integer": "not-an-integer",
    "long": "not-a-long",
    "float": "not-a-float",
    "double": "not-a-double",
    "boolean": "maybe",
    "timestamp": "not-a-timestamp",
}


def _distinct(item: Any, i: int) -> Any:
    """A copy of a list element made distinct (tag keys, names) so that a too-long list is refused for its
    length and not for duplicates."""
    import copy

    item = copy.deepcopy(item)
    if isinstance(item, dict):
        for k in ("key", "name"):
            if isinstance(item.get(k), str):
                item[k] = f"{item[k]}{i}"
    elif isinstance(item, str):
        item = f"{item}{i}"
    return item


def sized(shape: Shape, value: Any, n: int) -> Any:
    """`value` resized to n characters / elements / entries."""
    t = shape.type_name
    if t == "string":
        return ("x" * n) if not value else (value * (n // len(value) + 1))[:n]
    if t == "list":
        assert isinstance(shape, ListShape)
        seed = value[0] if value else fixtures.generate(shape.member, fixtures_world(), "")
        return [_distinct(seed, i) for i in range(n)]
    if t == "map":
        assert isinstance(shape, MapShape)
        seed_v = next(iter(value.values())) if value else fixtures.generate(shape.value, fixtures_world(), "")
        return {f"k{i}": seed_v for i in range(n)}
    raise ValueError(t)


_FW: Any = None


def fixtures_world() -> Any:
    global _FW
    if _FW is None:
        from world import PlaceholderWorld

        _FW = PlaceholderWorld()
    return _FW


def with_nul(value: str) -> str:
    return value[:1] + "\x00" + value[1:]


# ---------------------------------------------------------------------------------------------------------
# case generation


def operation_cases(op: Implemented, operation: OperationModel) -> list[Case]:
    service = op.service
    placeholder = fixtures_world()
    base = fixtures.base_members(service, operation)
    optional, _ = fixtures.optional_members(service, operation)
    shape = operation.input_shape
    protocol = operation.service_model.protocol

    def minimal(w: Any) -> dict:
        return fixtures.build_input(service, operation, w, base)

    apart = fixtures.full_apart(service, operation)
    in_full = fixtures.with_dependencies(service, operation.name, base + [m for m in optional if m not in apart])

    def full(w: Any) -> dict:
        return fixtures.build_input(service, operation, w, in_full)

    def only(member: str) -> Callable[[Any], dict]:
        members = fixtures.with_dependencies(service, operation.name, base + [member])
        return lambda w: fixtures.build_input(service, operation, w, members)

    cases: list[Case] = []

    def add(name: str, expect: str, description: str, build: Callable[[Any], Request]) -> None:
        cases.append(Case(op, name, expect, description, build))

    # -- well-formed
    add("wellformed", SUCCESS, f"required members{' and ' + ', '.join(base) if base else ''} only",
        lambda w: Request(payload=minimal(w)))
    if len(optional) > 0:
        left = f" but {', '.join(apart)} (each in its own call)" if apart else ""
        add("wellformed.full", SUCCESS, f"with every optional member that has a fixture{left}: "
            f"{', '.join(m for m in optional if m not in apart)}", lambda w: Request(payload=full(w)))
    if len(optional) > 1:
        for m in optional:
            add(f"optional.{m}", SUCCESS, f"with optional member {m}", (lambda b: lambda w: Request(payload=b(w)))(only(m)))

    if shape is None:
        cases.extend(body_cases(op, operation, minimal))
        return cases

    min_value = minimal(placeholder)
    full_value = full(placeholder)
    # Where nested mutations start from: the full call, and for each FULL_APART member its own call (only
    # the paths under that member; ids are by path, so the two never collide).
    sources: list[tuple[Callable[[Any], dict], dict, Optional[str]]] = [(full, full_value, None)]
    for m in apart:
        src = only(m)
        sources.append((src, src(placeholder), m))

    def source_nodes() -> Iterator[tuple[Callable[[Any], dict], PathT, Shape, Any]]:
        for src, value, under in sources:
            for path, node_shape, node in walk(value, shape):
                if under is None or (path and path[0] == under):
                    yield src, path, node_shape, node

    def mutate(source: Callable[[Any], dict], change: Callable[[dict], None]) -> Callable[[Any], Request]:
        def build(w: Any) -> Request:
            payload = source(w)
            change(payload)
            return Request(payload=payload)

        return build

    # -- required members removed: top level from the minimal call, nested ones from the full call (and
    #    from a FULL_APART member's own call)
    for name in shape.required_members:
        add(f"missing.{name}", CLIENT_ERROR, f"required member {name} removed",
            mutate(minimal, (lambda n: lambda p: p.pop(n, None))(name)))
    seen_nested: set[str] = set()
    for src, path, node_shape, node in source_nodes():
        if not path or not isinstance(node_shape, StructureShape) or not isinstance(node, dict):
            continue
        for req in node_shape.required_members:
            if req in node:
                p = path + (req,)
                pid = fmt_path(p)
                if pid not in seen_nested:
                    seen_nested.add(pid)
                    add(f"missing.{pid}", CLIENT_ERROR, f"required member {req} of {node_shape.name} removed",
                        mutate(src, (lambda q: lambda pl: del_at(pl, q))(p)))

    # -- wrong types (top-level members)
    for name, member in shape.members.items():
        if protocol in ("query", "ec2"):
            if member.type_name not in WRONG_TYPE_QUERY:
                continue
            bad = WRONG_TYPE_QUERY[member.type_name]
            from wire import form_name

            field_name = form_name(operation, name)

            def build_q(w: Any, n: str = name, f: str = field_name, b: str = bad) -> Request:
                payload = minimal(w)
                payload.pop(n, None)
                return Request(payload=payload, form_overrides={f: b})

            add(f"type.{name}", CLIENT_ERROR, f"{name} ({member.type_name}) sent as {bad!r}", build_q)
        else:
            bad = wrong_type_json(member)
            add(f"type.{name}", CLIENT_ERROR, f"{name} ({member.type_name}) sent as {bad!r}",
                mutate(minimal, (lambda n, b: lambda p: p.__setitem__(n, b))(name, bad)))

    # -- wrong types inside the members (JSON only: in the query protocol everything nested is text too)
    if protocol == "json":
        for src, path, node_shape, node in source_nodes():
            if len(path) < 2:
                continue
            bad = wrong_type_json(node_shape)
            add(f"type.{fmt_path(path)}", CLIENT_ERROR, f"{fmt_path(path)} ({node_shape.type_name}) sent as {bad!r}",
                mutate(src, (lambda q, b: lambda p: set_at(p, q, b))(path, bad)))

    # -- enums, lengths, ranges, NULs: every node of the full call (and of FULL_APART members' own calls), and
    #    top-level members they lack
    absent = [(name, m) for name, m in shape.members.items() if name not in full_value and name not in apart]
    for src, path, node_shape, node in source_nodes():
        if not path:
            continue
        pid = fmt_path(path)
        meta = node_shape.metadata
        t = node_shape.type_name
        if t == "string" and meta.get("enum"):
            add(f"enum.{pid}", CLIENT_ERROR, f"{pid} = {UNKNOWN_ENUM!r} (not in {node_shape.name})",
                mutate(src, (lambda q: lambda p: set_at(p, q, UNKNOWN_ENUM))(path)))
        if t in ("string", "list", "map"):
            for bound, n in (("over", meta.get("max")), ("under", meta.get("min"))):
                if n is None:
                    continue
                size = n + 1 if bound == "over" else n - 1
                if size < 0 or (bound == "under" and n == 0):
                    continue
                add(f"length.{pid}.{bound}", CLIENT_ERROR, f"{pid} with {size} {'characters' if t == 'string' else 'entries'} "
                    f"({node_shape.name} {'max' if bound == 'over' else 'min'} {n})",
                    mutate(src, (lambda q, s, sz: lambda p: set_at(p, q, sized(s, get_at(p, q), sz)))(path, node_shape, size)))
        if t in ("integer", "long"):
            for bound, n in (("over", meta.get("max")), ("under", meta.get("min"))):
                if n is None:
                    continue
                v = n + 1 if bound == "over" else n - 1
                add(f"range.{pid}.{bound}", CLIENT_ERROR, f"{pid} = {v} ({node_shape.name} {'max' if bound == 'over' else 'min'} {n})",
                    mutate(src, (lambda q, val: lambda p: set_at(p, q, val))(path, v)))
        if t == "string" and not meta.get("enum") and isinstance(node, str):
            add(f"nul.{pid}", EITHER, f"a NUL inside {pid}",
                mutate(src, (lambda q: lambda p: set_at(p, q, with_nul(get_at(p, q))))(path)))
    for name, member in absent:
        meta = member.metadata
        t = member.type_name
        if t == "string" and meta.get("enum"):
            add(f"enum.{name}", CLIENT_ERROR, f"{name} = {UNKNOWN_ENUM!r} (not in {member.name})",
                mutate(full, (lambda n: lambda p: p.__setitem__(n, UNKNOWN_ENUM))(name)))
        if t in ("string", "list", "map"):
            for bound, n in (("over", meta.get("max")), ("under", meta.get("min"))):
                if n is None or (bound == "under" and n == 0):
                    continue
                size = n + 1 if bound == "over" else n - 1
                add(f"length.{name}.{bound}", CLIENT_ERROR, f"{name} with {size} entries/characters ({member.name})",
                    mutate(full, (lambda nm, s, sz: lambda p: p.__setitem__(nm, sized(s, None, sz)))(name, member, size)))

    # -- a member the model does not define
    if protocol in ("query", "ec2"):
        add("unknown-member", EITHER, "an extra parameter the model does not define",
            lambda w: Request(payload=minimal(w), form_overrides={"ConformanceUnknownMember": "x"}))
    else:
        add("unknown-member", EITHER, "an extra member the model does not define",
            mutate(minimal, lambda p: p.__setitem__("conformanceUnknownMember", "x")))

    # -- references to resources that do not exist (or are of another kind, in another account, …)
    for name in shape.members:
        variants = fixtures.reference_variants(service, operation.name, name)
        if not variants:
            continue
        source = minimal if name in min_value else (full if name in full_value else (only(name) if name in apart else None))
        if source is None:
            continue
        member = shape.members[name]
        for label, make in variants.items():

            def build_ref(w: Any, n: str = name, mk: Callable = make, src: Callable = source, m: Shape = member) -> Request:
                payload = src(w)
                valid = payload[n][0] if m.type_name == "list" else payload[n]
                value = mk(w, valid)
                payload[n] = [value] if m.type_name == "list" else value
                return Request(payload=payload)

            add(f"ref.{name}.{label}", CLIENT_ERROR, f"{name} refers to a {label.replace('-', ' ')} resource", build_ref)

    cases.extend(body_cases(op, operation, minimal))
    return cases


def first_string_member(operation: OperationModel) -> str:
    shape = operation.input_shape
    if shape is not None:
        for name, m in shape.members.items():
            if m.type_name == "string" and not m.metadata.get("enum"):
                return name
    return "conformance"


def body_cases(op: Implemented, operation: OperationModel, minimal: Callable[[Any], dict]) -> list[Case]:
    """Bodies that are not a request at all."""
    out: list[Case] = []
    add = lambda name, expect, desc, build: out.append(Case(op, name, expect, desc, build))  # noqa: E731
    string_member = first_string_member(operation)
    if operation.service_model.protocol == "json":

        def invalid_utf8(w: Any) -> Request:
            payload = minimal(w)
            payload[string_member] = INVALID_UTF8_MARK
            raw = json.dumps(payload).encode().replace(INVALID_UTF8_MARK.encode(), b"ab\xff\xfecd")
            return Request(raw=raw)

        def truncated(w: Any) -> Request:
            raw = json.dumps(minimal(w)).encode()
            return Request(raw=raw[: max(1, len(raw) // 2)])

        def huge(w: Any) -> Request:
            payload = minimal(w)
            payload[string_member] = "a" * HUGE_BYTES
            return Request(raw=json.dumps(payload).encode())

        add("body.not-json", CLIENT_ERROR, "a body that is not JSON", lambda w: Request(raw=b"this is not JSON"))
        add("body.truncated", CLIENT_ERROR, "the well-formed body cut in half", truncated)
        add("body.array", CLIENT_ERROR, "a JSON array instead of an object", lambda w: Request(raw=b"[]"))
        add("body.null", CLIENT_ERROR, "JSON null instead of an object", lambda w: Request(raw=b"null"))
        add("body.string", CLIENT_ERROR, "a JSON string instead of an object", lambda w: Request(raw=b'"conformance"'))
        add("body.invalid-utf8", CLIENT_ERROR, f"invalid UTF-8 inside {string_member}", invalid_utf8)
        add("body.huge", CLIENT_ERROR, f"a {HUGE_BYTES // (1024 * 1024)} MiB body", huge)
    else:
        version = operation.service_model.api_version

        def form(w: Any) -> bytes:
            from wire import query_params

            return urllib.parse.urlencode(query_params(operation, minimal(w))).encode()

        add("body.invalid-utf8", CLIENT_ERROR, "invalid UTF-8 in a form value",
            lambda w: Request(raw=form(w) + b"&" + string_member.encode() + b"=ab\xff\xfecd"))
        add("body.invalid-utf8-escaped", EITHER, "percent-escaped invalid UTF-8 in a form value",
            lambda w: Request(raw=form(w) + b"&" + string_member.encode() + b"=ab%FF%FEcd"))
        add("body.not-form", CLIENT_ERROR, "a JSON body with a form content type",
            lambda w: Request(raw=json.dumps({"Action": operation.name, "Version": version}).encode()))
        add("body.no-action", CLIENT_ERROR, "a form without Action",
            lambda w: Request(raw=form(w), form_overrides={"Action": None}))
        add("body.no-version", EITHER, "a form without Version",
            lambda w: Request(raw=form(w), form_overrides={"Version": None}))
        add("body.huge", CLIENT_ERROR, f"a {HUGE_BYTES // (1024 * 1024)} MiB form",
            lambda w: Request(raw=form(w) + b"&Padding=" + b"a" * HUGE_BYTES))
    return out


def all_cases(ops: tuple[Implemented, ...]) -> list[Case]:
    out: list[Case] = []
    for op in ops:
        operation = models.operation_model(op)
        out.extend(operation_cases(op, operation))
    ids = [c.id for c in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"case ids generated twice: {dupes}"
    return out
