"""pytest wiring of the conformance suite: the suite's own `skiff server` (random port, temporary data
directory, killed and removed at the end — the end-to-end harness's SkiffServer), the resources the cases
refer to, and the coverage report printed at the end of the run (and written under pytest's basetemp).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Optional

import pytest

HERE = Path(__file__).resolve().parent
E2E = HERE.parent / "e2e"
for p in (str(HERE), str(E2E)):
    if p not in sys.path:
        sys.path.insert(0, p)

import harness  # noqa: E402  (tests/e2e/harness.py)
from harness import SkiffServer  # noqa: E402

import models  # noqa: E402
from results import RESULTS_KEY, Result, Results  # noqa: E402

REPORT_NAME = "conformance-coverage.md"


# ---------------------------------------------------------------------------------------------------------
# the server and the world


@pytest.fixture(scope="session")
def server():
    srv = harness.new_server("conformance")
    try:
        srv.start()
        yield srv
    finally:
        harness.destroy(srv)


@pytest.fixture(scope="session")
def world(server):
    from world import World

    return World(server)


# ---------------------------------------------------------------------------------------------------------
# results, for the coverage report


def pytest_configure(config):
    config.stash[RESULTS_KEY] = Results()


def _classify(item) -> Optional[tuple[str, str, str]]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    params = callspec.params
    if "case" in params:
        c = params["case"]
        return c.op.id, c.kind, c.id
    if "recipe" in params:
        r = params["recipe"]
        return f"{r.service}.{r.operation}", "error", r.id
    if "implemented" in params:
        op = params["implemented"]
        return op.id, "model", f"{op.id}.modeled"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._skiff_log_marks = {id(s): s.log_len() for s in SkiffServer.ALL}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cls = _classify(item)
    if cls is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        op_id, group, case_id = cls
        props = dict(item.user_properties)
        note = props.get("note", "")
        problem = ""
        if report.failed:
            exc = call.excinfo.value if call.excinfo else None
            text = getattr(exc, "problem", None) or (str(exc) if exc is not None else report.longreprtext)
            problem = " ".join(line.strip() for line in text.strip().splitlines()[:3])[:400] or "failed"
        item.config.stash[RESULTS_KEY].add(
            Result(op_id, group, case_id, report.outcome, note, problem, props.get("transport", ""))
        )
    if report.failed:
        marks = getattr(item, "_skiff_log_marks", {})
        for srv in SkiffServer.ALL:
            text = srv.log_text(marks.get(id(srv), 0))
            if text:
                tail = "".join(text.splitlines(keepends=True)[-100:])
                report.sections.append((f"skiff server log ({srv.name})", tail))


# ---------------------------------------------------------------------------------------------------------
# the coverage report


def coverage_report(config) -> list[str]:
    import errors
    import fixtures

    results = config.stash[RESULTS_KEY]
    try:
        ops = models.implemented_operations(str(harness.SKIFF_BIN))
    except models.OperationsUnavailable as e:
        return [f"no coverage report: {e}"]
    lines = [f"# Skiff API conformance (botocore {models.botocore_version()} models)", ""]

    by_service: dict[str, list] = defaultdict(list)
    for op in ops:
        by_service[op.service].append(op)
    lines += ["| service | protocol | implemented / model operations |", "|---|---|---|"]
    for service, sops in by_service.items():
        model = models.service_model(sops[0].botocore_service)
        lines.append(f"| {service} | {model.protocol} | {len(sops)} / {len(model.operation_names)} |")
    lines.append("")

    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in results.rows.values():
        if r.outcome == "skipped":
            continue
        c = counts[r.op_id][r.group]
        c[0 if r.outcome == "passed" else 1] += 1
    lines += ["| operation | well-formed passed/run | mutated passed/run | modelled errors passed/run |",
              "|---|---|---|---|"]
    totals = defaultdict(lambda: [0, 0])
    for op in ops:
        cells = []
        for g in ("wellformed", "mutated", "error"):
            ok, bad = counts[op.id][g]
            totals[g][0] += ok
            totals[g][1] += bad
            mark = "" if bad == 0 else " ✗"
            cells.append(f"{ok}/{ok + bad}{mark}")
        lines.append(f"| {op.id} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"{totals[g][0]}/{sum(totals[g])}" for g in ("wellformed", "mutated", "error")) + " |")
    lines.append("")

    # modelled errors: produced / not producible
    produced: dict[str, set[str]] = defaultdict(set)
    for r in results.rows.values():
        if r.group == "error" and r.outcome == "passed":
            # the note is the code (EC2's have dots: InvalidVpcID.NotFound); the id's part is the fallback
            produced[r.op_id.split(".")[0]].add(r.note or r.case_id.split(".error.")[1].split(".")[0])
    for service, sops in by_service.items():
        modeled: set[str] = set()
        for op in sops:
            modeled |= set(models.expected_error_codes(models.operation_model(op)))
        # EC2's model lists no errors; its documented ones stand in for them (models.EC2_DOCUMENTED_ERRORS).
        kind = "documented" if models.service_model(sops[0].botocore_service).protocol == "ec2" else "modelled"
        if not modeled:
            lines.append(f"- {service}: its implemented operations model no errors")
            continue
        got = sorted(modeled & produced[service])
        also = sorted(produced[service] - modeled)
        extra = f"; common errors produced too: {', '.join(also)}" if also and kind == "documented" else ""
        lines.append(f"- {service}: {kind} errors produced and parsed by boto3: {len(got)}/{len(modeled)}: "
                     f"{', '.join(got) or '-'}{extra}")
        for code in sorted(modeled - produced[service]):
            entry = errors.NOT_PRODUCIBLE.get((service, code))
            if entry:
                why, until = entry
                until_txt = f" (producible once {until[0]}.{until[1]} is routed)" if until else ""
                lines.append(f"  - not producible yet: {code}: {why}{until_txt}")
            else:
                lines.append(f"  - NOT PRODUCED: {code}")
    lines.append("")

    # optional members left out
    left_out = []
    for op in ops:
        _, without = fixtures.optional_members(op.service, models.operation_model(op))
        left_out += [f"{op.id}.{m} ({why})" for m, why in without.items()]
    if left_out:
        lines.append("Optional input members not exercised by well-formed calls: " + "; ".join(left_out))
        lines.append("")

    accepted = sorted(r.case_id for r in results.rows.values() if r.note == "accepted")
    if accepted:
        lines.append(f"Lenient mutations the server accepted (a success that validated): {len(accepted)}: "
                     + ", ".join(accepted))
        lines.append("")

    early = sorted(r.case_id for r in results.rows.values() if r.transport)
    if early:
        lines.append(f"Answered before the whole body was read, then closed (clients read the answer anyway): "
                     f"{len(early)}: " + ", ".join(early))
        lines.append("")

    failed = [r for r in results.rows.values() if r.outcome == "failed"]
    if failed:
        lines.append(f"FAILED cases ({len(failed)}):")
        lines += [f"- {r.case_id}: {r.problem}" for r in sorted(failed, key=lambda r: r.case_id)]
        lines.append("")
    no_wellformed = [op.id for op in ops if counts[op.id]["wellformed"][0] == 0]
    if no_wellformed:
        lines.append("IMPLEMENTED OPERATIONS WITHOUT A PASSING WELL-FORMED CASE: " + ", ".join(no_wellformed))
    else:
        lines.append(f"Every implemented operation ({len(ops)}) has a passing well-formed case.")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.stash[RESULTS_KEY].rows:
        return
    lines = coverage_report(config)
    tr = terminalreporter
    tr.section("Skiff API conformance coverage")
    for line in lines:
        tr.write_line(line)
    try:
        out = config._tmp_path_factory.getbasetemp() / REPORT_NAME
        out.write_text("\n".join(lines) + "\n")
        tr.write_line(f"(written to {out})")
    except Exception as e:  # noqa: BLE001 - the report on screen is what matters
        tr.write_line(f"(could not write the report file: {e})")
