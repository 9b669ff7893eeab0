"""Invalid input for every constrained input field of the model.

The cases are generated from `service-2.json` (BGW_MODEL): for every operation
the input structure is walked from a valid baseline request, and for each member
one request is sent per constraint it carries (required, min/max length,
pattern, min/max value, enum, list size), with client-side validation off.
Each must come back as ValidationException (HTTP 400) whose message names the
member. A constraint with no violating value in VIOLATIONS fails the suite, so
a model update cannot silently shrink the coverage.

Patterns are treated as whole-value matches, as the AWS services do: where
possible the violating values below break both the anchored and the unanchored
reading of the pattern.
"""

import copy
import json
import os

from bgwtest import Suite, client, expect_error, fake_arn, mint_activation_key, true

with open(os.environ["BGW_MODEL"]) as f:
    MODEL = json.load(f)
SHAPES = MODEL["shapes"]

GW = fake_arn("gateway")
HV = fake_arn("hypervisor")
VM = fake_arn("vm")
ROLE = "arn:aws:iam::123456789012:role/BackupGatewayTagSync"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:backup-gateway:*"

# Violating values per shape and constraint. "pattern" values have a valid length.
VIOLATIONS = {
    "ActivationKey": {"min": "", "max": "A" * 51, "pattern": "!!!!"},
    "GatewayArn": {
        "min": "arn:aws:backup-gateway:us-east-1:1:gateway/bgw-1",
        "max": GW + "a" * 180,
        "pattern": "x" * 60,
    },
    "ServerArn": {
        "min": "arn:aws:backup-gateway:us-east-1:1:hypervisor/h",
        "max": HV + "a" * 500,
        "pattern": "y" * 60,
    },
    "ResourceArn": {
        "min": "arn:aws:backup-gateway:us-east-1:1:vm/vm-1",
        "max": VM + "a" * 500,
        "pattern": "z" * 60,
    },
    "Name": {"min": "", "max": "n" * 101, "pattern": "bad name!"},
    "Host": {"min": "ab", "max": "h" * 129, "pattern": "\n\n\n"},
    "Username": {"min": "", "max": "u" * 101, "pattern": "    "},
    "Password": {"min": "", "max": "p" * 101, "pattern": "\u00e9\u00e9\u00e9"},
    "KmsKeyArn": {"min": "alias/short", "max": "alias/" + "k" * 500, "pattern": "k" * 60},
    "IamRoleArn": {"min": "arn:aws:iam::1:role", "max": ROLE + "r" * 2048, "pattern": "r" * 30},
    "LogGroupArn": {
        "max": "arn:aws:logs:us-east-1:123456789012:log-group:" + "g" * 2048 + ":*",
        "pattern": "not-a-log-group-arn",
    },
    "TagKey": {"min": "", "max": "k" * 129, "pattern": "!!!!"},
    "TagValue": {"max": "v" * 257, "pattern": "\x00"},
    "NextToken": {"min": "", "max": "t" * 1001, "pattern": "\n"},
    "VmwareCategory": {"min": "", "max": "c" * 81},
    "VmwareTagName": {"min": "", "max": "t" * 81},
}


def interval(**overrides):
    base = {
        "AverageUploadRateLimitInBitsPerSec": 1048576,
        "StartHourOfDay": 1,
        "StartMinuteOfHour": 0,
        "EndHourOfDay": 2,
        "EndMinuteOfHour": 0,
        "DaysOfWeek": [1],
    }
    base.update(overrides)
    return base


# A valid request per operation, with every constrained optional member present.
# Keys in SANITY_DROP are left out when the baseline itself is sent.
BASELINES = {
    "AssociateGatewayToServer": lambda: {"GatewayArn": GW, "ServerArn": HV},
    "CreateGateway": lambda: {
        "ActivationKey": mint_activation_key(),
        "GatewayDisplayName": "validation-gw",
        "GatewayType": "BACKUP_VM",
        "Tags": [{"Key": "k", "Value": "v"}],
    },
    "DeleteGateway": lambda: {"GatewayArn": GW},
    "DeleteHypervisor": lambda: {"HypervisorArn": HV},
    "DisassociateGatewayFromServer": lambda: {"GatewayArn": GW},
    "GetBandwidthRateLimitSchedule": lambda: {"GatewayArn": GW},
    "GetGateway": lambda: {"GatewayArn": GW},
    "GetHypervisor": lambda: {"HypervisorArn": HV},
    "GetHypervisorPropertyMappings": lambda: {"HypervisorArn": HV},
    "GetVirtualMachine": lambda: {"ResourceArn": VM},
    "ImportHypervisorConfiguration": lambda: {
        "Name": "validation-hv",
        "Host": "vcenter.example.com",
        "Username": "administrator@vsphere.local",
        "Password": "secret",
        "KmsKeyArn": KMS,
        "Tags": [{"Key": "k", "Value": "v"}],
    },
    "ListGateways": lambda: {"MaxResults": 10, "NextToken": "token"},
    "ListHypervisors": lambda: {"MaxResults": 10, "NextToken": "token"},
    "ListTagsForResource": lambda: {"ResourceArn": GW},
    "ListVirtualMachines": lambda: {"HypervisorArn": HV, "MaxResults": 10, "NextToken": "token"},
    "PutBandwidthRateLimitSchedule": lambda: {"GatewayArn": GW, "BandwidthRateLimitIntervals": [interval()]},
    "PutHypervisorPropertyMappings": lambda: {
        "HypervisorArn": HV,
        "VmwareToAwsTagMappings": [
            {"VmwareCategory": "cat", "VmwareTagName": "tag", "AwsTagKey": "key", "AwsTagValue": "value"}
        ],
        "IamRoleArn": ROLE,
    },
    "PutMaintenanceStartTime": lambda: {"GatewayArn": GW, "HourOfDay": 1, "MinuteOfHour": 0, "DayOfWeek": 1, "DayOfMonth": 1},
    "StartVirtualMachinesMetadataSync": lambda: {"HypervisorArn": HV},
    "TagResource": lambda: {"ResourceARN": GW, "Tags": [{"Key": "k", "Value": "v"}]},
    "TestHypervisorConfiguration": lambda: {"GatewayArn": GW, "Host": "vcenter.example.com", "Username": "root", "Password": "pw"},
    "UntagResource": lambda: {"ResourceARN": GW, "TagKeys": ["k"]},
    "UpdateGatewayInformation": lambda: {"GatewayArn": GW, "GatewayDisplayName": "renamed"},
    "UpdateGatewaySoftwareNow": lambda: {"GatewayArn": GW},
    "UpdateHypervisor": lambda: {
        "HypervisorArn": HV,
        "Host": "vcenter.example.com",
        "Username": "root",
        "Password": "pw",
        "Name": "renamed",
        "LogGroupArn": LOG_GROUP,
    },
}
# NextToken values are opaque and server-issued; DayOfMonth together with
# DayOfWeek is itself invalid (exactly one is allowed).
SANITY_DROP = {"NextToken", "DayOfMonth"}

DELETE = object()


class Gap(Exception):
    pass


def cases(shape_name, value, path, leaf):
    """Yield (description, path, leaf member name, replacement) for one value."""
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if kind == "structure":
        for member, ref in shape["members"].items():
            mpath = path + [member]
            if member in shape.get("required", []):
                yield ("%s missing (required)" % member, mpath, member, DELETE)
            if member not in value:
                raise Gap("baseline lacks member %s at %s" % (member, "/".join(map(str, path)) or "top"))
            yield from cases(ref["shape"], value[member], mpath, member)
        return
    if kind == "list":
        if shape.get("min", 0) > 0:
            yield ("%s with %d entries (min %d)" % (leaf, shape["min"] - 1, shape["min"]), path, leaf, value[: shape["min"] - 1])
        if "max" in shape:
            longer = (value * (shape["max"] + 1))[: shape["max"] + 1]
            yield ("%s with %d entries (max %d)" % (leaf, len(longer), shape["max"]), path, leaf, longer)
        if value:
            yield from cases(shape["member"]["shape"], value[0], path + [0], leaf)
        return
    if kind in ("integer", "long"):
        if "min" in shape:
            yield ("%s = %d (min %d)" % (leaf, shape["min"] - 1, shape["min"]), path, leaf, shape["min"] - 1)
        if "max" in shape:
            yield ("%s = %d (max %d)" % (leaf, shape["max"] + 1, shape["max"]), path, leaf, shape["max"] + 1)
        return
    if kind == "string":
        if "enum" in shape:
            yield ("%s = not in enum" % leaf, path, leaf, "NOT_A_" + shape["enum"][0])
        wanted = []
        if shape.get("min", 0) > 0:
            wanted.append("min")
        if "max" in shape:
            wanted.append("max")
        if "pattern" in shape:
            wanted.append("pattern")
        table = VIOLATIONS.get(shape_name, {})
        for constraint in wanted:
            if constraint not in table:
                raise Gap("no violating value for %s.%s (shape %s)" % (leaf, constraint, shape_name))
            bad = table[constraint]
            what = {"min": "shorter than %s" % shape.get("min"), "max": "longer than %s" % shape.get("max"), "pattern": "not matching %s" % shape.get("pattern")}[constraint]
            yield ("%s %s" % (leaf, what), path, leaf, bad)
        return
    # timestamps, booleans and the like carry no constraint


def apply(request, path, replacement):
    request = copy.deepcopy(request)
    target = request
    for step in path[:-1]:
        target = target[step]
    if replacement is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return request


def call(c, operation, request):
    method = getattr(c, MODEL_OPERATIONS[operation])
    return method(**request)


MODEL_OPERATIONS = {}
for op in MODEL["operations"]:
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in op).lstrip("_")
    MODEL_OPERATIONS[op] = snake


def baseline_accepted(c, operation):
    request = {k: v for k, v in BASELINES[operation]().items() if k not in SANITY_DROP}
    try:
        call(c, operation, request)
    except Exception as err:  # noqa: BLE001
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        true(code != "ValidationException", "the valid baseline request was refused: %s" % err)


def invalid_case(c, operation, make_request, path, leaf, replacement, sensitive_value):
    request = apply(make_request(), path, replacement)
    err = expect_error(lambda: call(c, operation, request), "ValidationException", mentions=[leaf])
    if sensitive_value:
        message = err.response["Error"].get("Message", "")
        true(sensitive_value not in message, "the message echoes a sensitive value: %r" % message)


def main():
    suite = Suite("validation")
    c = client(validate=False)
    missing = set(MODEL["operations"]) - set(BASELINES)
    suite.check("a baseline for every operation of the model", lambda: true(not missing, "no baseline for %s" % sorted(missing)))
    total = 0
    for operation in sorted(MODEL["operations"]):
        if operation not in BASELINES:
            continue
        suite.check("%s: valid baseline is not a ValidationException" % operation, baseline_accepted, c, operation)
        input_shape = MODEL["operations"][operation]["input"]["shape"]
        try:
            generated = list(cases(input_shape, BASELINES[operation]() if operation != "CreateGateway" else {
                "ActivationKey": "placeholder", "GatewayDisplayName": "x", "GatewayType": "BACKUP_VM", "Tags": [{"Key": "k", "Value": "v"}],
            }, [], None))
        except Gap as gap:
            suite.check("%s: cases generated from the model" % operation, lambda g=gap: (_ for _ in ()).throw(AssertionError(str(g))))
            continue
        for description, path, leaf, replacement in generated:
            total += 1
            shape_name = _shape_at(input_shape, path)
            sensitive = SHAPES.get(shape_name, {}).get("sensitive", False)
            secret = replacement if sensitive and isinstance(replacement, str) and len(replacement) >= 4 and replacement.strip() else None
            suite.check(
                "%s: %s -> ValidationException" % (operation, description),
                invalid_case, c, operation, BASELINES[operation], path, leaf, replacement, secret,
            )
    suite.check("at least 150 generated invalid-input cases", lambda: true(total >= 150, "only %d cases" % total))
    suite.finish()


def _shape_at(shape_name, path):
    for step in path:
        shape = SHAPES[shape_name]
        if shape["type"] == "structure":
            shape_name = shape["members"][step]["shape"]
        elif shape["type"] == "list":
            shape_name = shape["member"]["shape"]
    return shape_name


if __name__ == "__main__":
    main()
