"""What each case did, collected by conftest's report hook for the coverage report and the final
100 %-of-operations check."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class Result:
    op_id: str  # "ecs.CreateCluster"
    group: str  # "wellformed" | "mutated" | "error" | "model"
    case_id: str
    outcome: str  # "passed" | "failed" | "skipped"
    note: str = ""
    problem: str = ""
    transport: str = ""


@dataclass
class Results:
    rows: dict[str, Result] = field(default_factory=dict)

    def add(self, r: Result) -> None:
        prev = self.rows.get(r.case_id)
        if prev is None or prev.outcome == "passed":  # a failed teardown after a passed call counts
            self.rows[r.case_id] = r


RESULTS_KEY = pytest.StashKey[Results]()
