"""pytest fixtures for the end-to-end suite: one shared `skiff server` for the session (fixed root
credentials from the environment, account 123456789012), clients bound to it, and a factory for private
servers (durability, generated credentials) that are always killed and removed, even when a test fails.

The helpers themselves live in harness.py.
"""

from __future__ import annotations

import functools

import pytest

import harness
from harness import SkiffServer, destroy, new_server


@pytest.fixture(scope="session")
def server():
    srv = new_server("shared")
    try:
        srv.start()
        yield srv
    finally:
        destroy(srv)


@pytest.fixture(scope="session")
def ecs(server):
    """boto3 ECS client for the shared server (no retries)."""
    return server.client("ecs")


@pytest.fixture(scope="session")
def sts(server):
    return server.client("sts")


@pytest.fixture(scope="session")
def aws(server):
    """aws(*args) runs the PyPI AWS CLI against the shared server and returns its parsed JSON output."""
    return functools.partial(harness.run_aws, server)


@pytest.fixture
def make_server():
    """make_server(name, **SkiffServer kwargs) -> a started private server; killed and removed afterwards."""
    made: list[SkiffServer] = []

    def make(name: str = "private", start: bool = True, **kw) -> SkiffServer:
        srv = new_server(name, **kw)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in made:
        destroy(srv)


# -- on failure, attach what every server printed during the test ------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._skiff_log_marks = {id(s): s.log_len() for s in SkiffServer.ALL}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    marks = getattr(item, "_skiff_log_marks", {})
    for srv in SkiffServer.ALL:
        text = srv.log_text(marks.get(id(srv), 0))
        if text:
            tail = "".join(text.splitlines(keepends=True)[-200:])
            report.sections.append((f"skiff server log ({srv.name}, {srv.data_dir})", tail))
