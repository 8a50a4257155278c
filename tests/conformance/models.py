"""Where the suite's two inputs come from: the operations Skiff implements (asked of the `skiff` binary
itself, `skiff api operations --output json`, which prints its routing table) and the botocore service
models (`service-2.json` of the botocore in the virtualenv)."""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import botocore
import botocore.loaders
from botocore.model import OperationModel, ServiceModel

# Signing names (what `skiff api operations` reports) that differ from botocore's service name.
SIGNING_NAME_TO_BOTOCORE = {"elasticloadbalancing": "elbv2"}


@dataclass(frozen=True, order=True)
class Implemented:
    service: str  # the SigV4 signing name, as `skiff api operations` reports it
    operation: str
    protocol: str  # "json", "query" or "ec2" (botocore's protocol names)

    @property
    def botocore_service(self) -> str:
        return SIGNING_NAME_TO_BOTOCORE.get(self.service, self.service)

    @property
    def id(self) -> str:
        return f"{self.service}.{self.operation}"


class OperationsUnavailable(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def implemented_operations(skiff_bin: str) -> tuple[Implemented, ...]:
    """The routing table of the `skiff` binary. Raises OperationsUnavailable (with the binary's output)
    when it cannot be read: the suite must never fall back to a list of its own."""
    path = Path(skiff_bin)
    if not path.exists():
        raise OperationsUnavailable(f"{path} does not exist: build it (cargo build -p skiff) or set SKIFF_BIN")
    cmd = [str(path), "api", "operations", "--output", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise OperationsUnavailable(
            f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}".rstrip()
        )
    try:
        rows = json.loads(proc.stdout)
        ops = tuple(sorted(Implemented(r["service"], r["operation"], r["protocol"]) for r in rows))
    except (ValueError, KeyError, TypeError) as e:
        raise OperationsUnavailable(f"`{' '.join(cmd)}` printed something else than the JSON contract: {e}\n{proc.stdout}")
    if not ops:
        raise OperationsUnavailable(f"`{' '.join(cmd)}` lists no operations")
    if len(set(ops)) != len(ops):
        raise OperationsUnavailable(f"`{' '.join(cmd)}` lists an operation twice: {proc.stdout}")
    return ops


@functools.lru_cache(maxsize=None)
def _loader() -> botocore.loaders.Loader:
    return botocore.loaders.Loader()


@functools.lru_cache(maxsize=None)
def service_model(botocore_service: str) -> ServiceModel:
    data = _loader().load_service_model(botocore_service, "service-2")
    return ServiceModel(data, service_name=botocore_service)


def operation_model(op: Implemented) -> OperationModel:
    return service_model(op.botocore_service).operation_model(op.operation)


def botocore_version() -> str:
    return botocore.__version__


COMMON_ERRORS = {
    # Errors any AWS JSON service can return for any operation (authentication, throttling, the protocol
    # layer); kept small and explicit on purpose.
    "json": frozenset(
        {
            "AccessDeniedException",
            "IncompleteSignature",
            "IncompleteSignatureException",
            "InvalidSignatureException",
            "MissingAuthenticationToken",
            "MissingAuthenticationTokenException",
            "UnrecognizedClientException",
            "ThrottlingException",
            "ValidationException",
            "SerializationException",
            "UnknownOperationException",
        }
    ),
    # The query protocol's common errors (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html).
    "query": frozenset(
        {
            "InvalidAction",
            "MissingAction",
            "ValidationError",
            "InvalidParameterValue",
            "InvalidParameterCombination",
            "MissingParameter",
            "SignatureDoesNotMatch",
            "InvalidClientTokenId",
            "IncompleteSignature",
            "MissingAuthenticationToken",
            "MalformedQueryString",
        }
    ),
    # EC2's query dialect: its common client errors
    # (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html#CommonErrors), the ones
    # that can answer any call. EC2's authentication failures are AuthFailure (and RequestExpired for the
    # clock), not the query protocol's InvalidClientTokenId / SignatureDoesNotMatch.
    "ec2": frozenset(
        {
            "AuthFailure",
            "Blocked",
            "DryRunOperation",
            "IncompleteSignature",
            "InvalidAction",
            "InvalidCharacter",
            "InvalidClientTokenId",
            "InvalidPaginationToken",
            "InvalidParameter",
            "InvalidParameterCombination",
            "InvalidParameterValue",
            "InvalidQueryParameter",
            "MalformedQueryString",
            "MissingAction",
            "MissingAuthenticationToken",
            "MissingParameter",
            "OptInRequired",
            "RequestExpired",
            "RequestLimitExceeded",
            "UnauthorizedOperation",
            "UnknownParameter",
            "UnsupportedOperation",
            "ValidationError",
        }
    ),
}

# EC2's model declares no error shapes at all: its errors are documented in one list for the whole API
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). These are the
# resource-specific ones each implemented operation can answer; for the ec2 protocol they play the part of
# the modelled errors (recipes provoke each, or errors.NOT_PRODUCIBLE says why not).
EC2_DOCUMENTED_ERRORS: dict[str, frozenset[str]] = {
    "DescribeVpcs": frozenset({"InvalidVpcID.NotFound"}),
    "DescribeVpcAttribute": frozenset({"InvalidVpcID.NotFound"}),
    "DescribeSubnets": frozenset({"InvalidSubnetID.NotFound"}),
    "DescribeSecurityGroups": frozenset({"InvalidGroup.NotFound", "InvalidGroupId.Malformed"}),
    "DescribeAvailabilityZones": frozenset(),
}


def modeled_error_codes(operation: OperationModel) -> dict[str, str]:
    """The error codes the operation's model lists, code → shape name (the query protocol's `error.code`
    may differ from the shape name, e.g. IAM's NoSuchEntity for NoSuchEntityException)."""
    out = {}
    for shape in operation.error_shapes:
        code = shape.metadata.get("error", {}).get("code") or shape.name
        out[code] = shape.name
    return out


def documented_error_codes(operation: OperationModel) -> dict[str, str]:
    """For the ec2 protocol (no modelled errors): the documented resource errors of the operation, code →
    code. Empty for every other protocol."""
    if operation.service_model.protocol != "ec2":
        return {}
    return {code: code for code in sorted(EC2_DOCUMENTED_ERRORS.get(operation.name, frozenset()))}


def expected_error_codes(operation: OperationModel) -> dict[str, str]:
    """The errors every one of which needs a recipe or a NOT_PRODUCIBLE entry: the modelled ones, and for
    EC2 the documented ones (code → shape name, or code)."""
    return {**modeled_error_codes(operation), **documented_error_codes(operation)}


def allowed_error_codes(operation: OperationModel) -> set[str]:
    return set(expected_error_codes(operation)) | set(COMMON_ERRORS[operation.service_model.protocol])


def is_query_like(operation: OperationModel) -> bool:
    """Form-encoded requests and XML responses: the query protocol and EC2's dialect of it."""
    return operation.service_model.protocol in ("query", "ec2")
