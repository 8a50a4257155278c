"""The generated conformance cases, one pytest case per (operation, case), for every operation the `skiff`
binary routes (`skiff api operations`), against the suite's own real server.

Ids: `ecs.CreateCluster.wellformed`, `ecs.CreateCluster.missing.clusterName`, `ecs.DeleteCluster.error.
ClusterNotFoundException`, … (see cases.py for the kinds). Expectations come from the botocore models.
"""

from __future__ import annotations

import pytest

import harness
import models

OPS = models.implemented_operations(str(harness.SKIFF_BIN))  # fails collection loudly if unavailable


def _modeled(op: models.Implemented) -> bool:
    try:
        model = models.service_model(op.botocore_service)
    except Exception:  # noqa: BLE001
        return False
    return op.operation in model.operation_names


import cases  # noqa: E402
import checks  # noqa: E402
import errors  # noqa: E402

MODELED_OPS = tuple(op for op in OPS if _modeled(op))
CASES = cases.all_cases(MODELED_OPS)
RECIPES = [
    r for r in errors.RECIPES if any(op.service == r.service and op.operation == r.operation for op in MODELED_OPS)
]


@pytest.mark.parametrize("implemented", OPS, ids=[f"{op.id}.modeled" for op in OPS])
def test_operation_is_modeled(implemented):
    """Every operation Skiff routes exists in botocore's model of its service, with the same protocol."""
    try:
        model = models.service_model(implemented.botocore_service)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"no botocore model for service {implemented.service!r}: {e}")
    assert implemented.operation in model.operation_names, (
        f"{implemented.id} is routed by Skiff but botocore {models.botocore_version()} has no such operation"
    )
    assert model.protocol == implemented.protocol, (
        f"{implemented.id}: Skiff speaks {implemented.protocol}, the model says {model.protocol}"
    )
    assert model.signing_name == implemented.service, (
        f"{implemented.id}: Skiff's signing name {implemented.service!r}, the model's {model.signing_name!r}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, server, world, record_property):
    note, exchange = checks.run_case(server, case, world)
    record_property("note", note)
    if exchange.notes:
        record_property("transport", "; ".join(exchange.notes))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.id for r in RECIPES])
def test_modeled_error(recipe, server, world, record_property):
    """The error is produced, boto3 raises its own exception class for it (`client.exceptions.<Code>`),
    and the operation's model lists it."""
    from botocore.exceptions import ClientError
    from botocore import xform_name

    op = next(o for o in MODELED_OPS if o.service == recipe.service and o.operation == recipe.operation)
    operation = models.operation_model(op)
    modeled = models.modeled_error_codes(operation)
    client = world.client(op.botocore_service)
    if operation.service_model.protocol == "ec2":
        # No error shapes in EC2's model, so no exception classes: a ClientError with the code it must carry
        # (a documented error of the operation, or one of EC2's common errors).
        assert recipe.code in models.allowed_error_codes(operation), (
            f"recipe table error: {recipe.code} is neither documented for {recipe.operation} nor a common EC2 error"
        )
        exc_class = ClientError
    else:
        assert recipe.code in modeled, f"recipe table error: {recipe.operation} does not model {recipe.code}"
        exc_class = getattr(client.exceptions, modeled[recipe.code])
    params = recipe.params(world)
    method = getattr(client, xform_name(recipe.operation))
    try:
        result = method(**params)
    except exc_class as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, f"{recipe.code} came with HTTP {status}"
        assert e.response["Error"]["Code"] == recipe.code, (
            f"{recipe.operation}({params}) should raise {recipe.code}; it raised {e.response['Error']} (HTTP {status})"
        )
        assert (e.response["Error"].get("Message") or "").strip(), f"{recipe.code} without a message"
        record_property("note", recipe.code)
        return
    except ClientError as e:
        pytest.fail(
            f"{recipe.operation}({params}) should raise {recipe.code}; boto3 raised "
            f"{type(e).__name__} with code {e.response['Error'].get('Code')!r} "
            f"(HTTP {e.response['ResponseMetadata'].get('HTTPStatusCode')}): {e.response['Error'].get('Message')}"
        )
    pytest.fail(f"{recipe.operation}({params}) should raise {recipe.code}; it succeeded: {result}")


@pytest.mark.parametrize("service", sorted({op.service for op in MODELED_OPS}))
def test_modeled_errors_accounted_for(service):
    """Every error the model lists for an implemented operation (for EC2: every documented one) has a
    recipe that provokes it, or an entry in errors.NOT_PRODUCIBLE saying why not; an entry that names an
    operation that is now routed must become a recipe."""
    implemented = {(o.service, o.operation) for o in OPS}
    with_recipe = {r.code for r in RECIPES if r.service == service}
    problems = []
    for op in (o for o in MODELED_OPS if o.service == service):
        for code in models.expected_error_codes(models.operation_model(op)):
            if code in with_recipe:
                continue
            entry = errors.NOT_PRODUCIBLE.get((service, code))
            if entry is None:
                problems.append(f"{op.id} models {code}: add a recipe to errors.RECIPES or a reason to NOT_PRODUCIBLE")
            elif entry[1] is not None and entry[1] in implemented:
                problems.append(f"{code} was not producible until {entry[1][0]}.{entry[1][1]}, which is routed now: add a recipe")
    assert not problems, "\n".join(sorted(set(problems)))


def test_every_implemented_operation_has_a_passing_wellformed_case(request):
    """100 % of the implemented operations: each one has at least one well-formed call that passed in this
    run (runs last; deselecting the cases makes it fail, on purpose)."""
    from results import RESULTS_KEY

    rows = request.config.stash[RESULTS_KEY].rows.values()
    passing = {r.op_id for r in rows if r.group == "wellformed" and r.outcome == "passed"}
    missing = [op.id for op in OPS if op.id not in passing]
    assert not missing, (
        f"implemented operations without a passing well-formed case ({len(missing)}/{len(OPS)}): {', '.join(missing)}"
    )
