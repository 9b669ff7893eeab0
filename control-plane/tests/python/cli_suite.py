"""The important operations through the aws-cli installed next to this
interpreter, run exactly as a user would:

    AWS_SHARED_CREDENTIALS_FILE=DIR/admin-credentials aws --region us-east-1 \\
        --endpoint-url https://ADDR --ca-bundle DIR/tls/cert.pem backup-gateway ...
"""

import json
import os
import subprocess
import sys

from bgwtest import (
    CA_BUNDLE,
    ENDPOINT,
    GATEWAY_ARN_RE,
    HYPERVISOR_ARN_RE,
    PROTOCOL,
    REGION,
    Suite,
    eq,
    fake_arn,
    mint_activation_key,
    true,
    unique_name,
)

AWS = os.path.join(os.path.dirname(sys.executable), "aws")
suite = Suite("aws-cli", sdk_requests=False)
state = {}


def aws(*args, expect_ok=True, debug=False):
    cmd = [AWS, "--region", REGION, "--endpoint-url", ENDPOINT, "--output", "json"]
    if CA_BUNDLE:
        cmd += ["--ca-bundle", CA_BUNDLE]
    if debug:
        cmd.append("--debug")
    cmd += ["backup-gateway"] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if expect_ok:
        if proc.returncode != 0:
            raise AssertionError("%s exited %d: %s" % (" ".join(args[:1]), proc.returncode, proc.stderr.strip()[-800:]))
        return (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr
    if proc.returncode == 0:
        raise AssertionError("%s succeeded but should have failed: %s" % (args[0], proc.stdout))
    return proc.returncode, proc.stderr


def speaks_protocol():
    out, stderr = aws("list-gateways", debug=True)
    true("Gateways" in out, "list-gateways output: %r" % out)
    if PROTOCOL == "cbor":
        true("/service/BackupOnPremises_v20210101/operation/ListGateways" in stderr, "aws-cli did not use the CBOR path")
    else:
        true("BackupOnPremises_v20210101.ListGateways" in stderr, "aws-cli did not send X-Amz-Target")


def create_gateway():
    name = unique_name("cli-gw")
    out, _ = aws("create-gateway", "--activation-key", mint_activation_key(), "--gateway-display-name", name,
                 "--gateway-type", "BACKUP_VM", "--tags", "Key=owner,Value=cli")
    true(GATEWAY_ARN_RE.match(out["GatewayArn"]), "ARN %r" % out["GatewayArn"])
    state["gw"], state["name"] = out["GatewayArn"], name


def get_gateway():
    out, _ = aws("get-gateway", "--gateway-arn", state["gw"])
    eq(out["Gateway"]["GatewayDisplayName"], state["name"], "name")
    eq(out["Gateway"]["GatewayType"], "BACKUP_VM", "type")


def update_gateway_information():
    aws("update-gateway-information", "--gateway-arn", state["gw"], "--gateway-display-name", "cli-renamed")
    out, _ = aws("get-gateway", "--gateway-arn", state["gw"])
    eq(out["Gateway"]["GatewayDisplayName"], "cli-renamed", "renamed")


def maintenance():
    aws("put-maintenance-start-time", "--gateway-arn", state["gw"], "--hour-of-day", "2", "--minute-of-hour", "15", "--day-of-week", "3")
    out, _ = aws("get-gateway", "--gateway-arn", state["gw"])
    mst = out["Gateway"]["MaintenanceStartTime"]
    eq((mst["HourOfDay"], mst["MinuteOfHour"], mst["DayOfWeek"]), (2, 15, 3), "maintenance window")


def bandwidth():
    intervals = [{"AverageUploadRateLimitInBitsPerSec": 1000000, "StartHourOfDay": 8, "StartMinuteOfHour": 0,
                  "EndHourOfDay": 18, "EndMinuteOfHour": 59, "DaysOfWeek": [1, 2, 3, 4, 5]}]
    aws("put-bandwidth-rate-limit-schedule", "--gateway-arn", state["gw"], "--bandwidth-rate-limit-intervals", json.dumps(intervals))
    out, _ = aws("get-bandwidth-rate-limit-schedule", "--gateway-arn", state["gw"])
    eq(out["BandwidthRateLimitIntervals"], intervals, "schedule")


def hypervisor():
    out, _ = aws("import-hypervisor-configuration", "--name", unique_name("cli-hv"), "--host", "vcenter.example.com",
                 "--username", "administrator@vsphere.local", "--password", "cli-secret")
    true(HYPERVISOR_ARN_RE.match(out["HypervisorArn"]), "ARN %r" % out["HypervisorArn"])
    state["hv"] = out["HypervisorArn"]
    out, _ = aws("get-hypervisor", "--hypervisor-arn", state["hv"])
    eq(out["Hypervisor"]["State"], "PENDING", "state")
    out, _ = aws("list-hypervisors")
    true(any(h["HypervisorArn"] == state["hv"] for h in out["Hypervisors"]), "listed")


def hypervisor_extras():
    aws("update-hypervisor", "--hypervisor-arn", state["hv"], "--name", "cli-hv-renamed", "--host", "10.1.2.3")
    out, _ = aws("get-hypervisor", "--hypervisor-arn", state["hv"])
    eq((out["Hypervisor"]["Name"], out["Hypervisor"]["Host"]), ("cli-hv-renamed", "10.1.2.3"), "updated")
    mappings = [{"VmwareCategory": "Env", "VmwareTagName": "Prod", "AwsTagKey": "env", "AwsTagValue": "prod"}]
    aws("put-hypervisor-property-mappings", "--hypervisor-arn", state["hv"], "--iam-role-arn",
        "arn:aws:iam::123456789012:role/BackupGatewayTagSync", "--vmware-to-aws-tag-mappings", json.dumps(mappings))
    out, _ = aws("get-hypervisor-property-mappings", "--hypervisor-arn", state["hv"])
    eq(out["VmwareToAwsTagMappings"], mappings, "mappings")
    # No gateway serves the hypervisor yet: nothing could run the sync.
    _code, stderr = aws("start-virtual-machines-metadata-sync", "--hypervisor-arn", state["hv"], expect_ok=False)
    true("ConflictException" in stderr and "associate" in stderr.lower(),
         "sync without a gateway is refused, naming the missing step: %r" % stderr[-400:])


def gateway_extras():
    out, _ = aws("update-gateway-software-now", "--gateway-arn", state["gw"])
    eq(out["GatewayArn"], state["gw"], "update accepted")
    args = ("test-hypervisor-configuration", "--gateway-arn", state["gw"], "--host", "vcenter.example.com")
    proc = subprocess.run([AWS, "--region", REGION, "--endpoint-url", ENDPOINT, "--ca-bundle", CA_BUNDLE or "",
                           "backup-gateway"] + list(args), capture_output=True, text=True, timeout=120)
    true(proc.returncode == 0 or "ConflictException" in proc.stderr,
         "test-hypervisor-configuration without an agent: accepted or Conflict, got %r" % proc.stderr[-400:])
    _code, stderr = aws("get-virtual-machine", "--resource-arn", fake_arn("vm"), expect_ok=False)
    true("ResourceNotFoundException" in stderr, "get-virtual-machine unknown: %r" % stderr[-400:])


def associate():
    aws("associate-gateway-to-server", "--gateway-arn", state["gw"], "--server-arn", state["hv"])
    out, _ = aws("get-gateway", "--gateway-arn", state["gw"])
    true(out["Gateway"].get("HypervisorId"), "HypervisorId after association")
    out, _ = aws("start-virtual-machines-metadata-sync", "--hypervisor-arn", state["hv"])
    eq(out["HypervisorArn"], state["hv"], "sync accepted once a gateway serves the hypervisor")
    aws("disassociate-gateway-from-server", "--gateway-arn", state["gw"])


def tags():
    aws("tag-resource", "--resource-arn", state["gw"], "--tags", "Key=env,Value=test")
    out, _ = aws("list-tags-for-resource", "--resource-arn", state["gw"])
    eq({t["Key"]: t["Value"] for t in out["Tags"]}, {"owner": "cli", "env": "test"}, "tags")
    aws("untag-resource", "--resource-arn", state["gw"], "--tag-keys", "owner")
    out, _ = aws("list-tags-for-resource", "--resource-arn", state["gw"])
    eq([t["Key"] for t in out["Tags"]], ["env"], "tags after untag")


def list_gateways_paginated():
    for _ in range(3):
        aws("create-gateway", "--activation-key", mint_activation_key(), "--gateway-display-name", unique_name("cli-gw"),
            "--gateway-type", "BACKUP_VM")
    out, stderr = aws("list-gateways", "--page-size", "1", debug=True)
    arns = [g["GatewayArn"] for g in out["Gateways"]]
    true(len(arns) >= 4 and len(set(arns)) == len(arns), "all gateways, once each: %r" % arns)
    true(stderr.count("NextToken") >= 3, "the CLI followed NextToken across pages")


def list_vms():
    out, _ = aws("list-virtual-machines")
    eq(out.get("VirtualMachines", []), [], "no VM")


def not_found():
    code, stderr = aws("get-gateway", "--gateway-arn", fake_arn("gateway"), expect_ok=False)
    true("ResourceNotFoundException" in stderr, "stderr names the error: %r" % stderr[-400:])


def validation():
    code, stderr = aws("put-maintenance-start-time", "--gateway-arn", state["gw"], "--hour-of-day", "2", "--minute-of-hour", "15",
                       expect_ok=False)
    true("ValidationException" in stderr, "stderr names the error: %r" % stderr[-400:])


def delete():
    aws("delete-hypervisor", "--hypervisor-arn", state["hv"])
    aws("delete-gateway", "--gateway-arn", state["gw"])
    code, stderr = aws("get-gateway", "--gateway-arn", state["gw"], expect_ok=False)
    true("ResourceNotFoundException" in stderr, "deleted gateway: %r" % stderr[-400:])


for name, fn in [
    ("aws-cli speaks the %s protocol" % PROTOCOL, speaks_protocol),
    ("create-gateway", create_gateway),
    ("get-gateway", get_gateway),
    ("update-gateway-information", update_gateway_information),
    ("put-maintenance-start-time", maintenance),
    ("put/get-bandwidth-rate-limit-schedule", bandwidth),
    ("import-hypervisor-configuration / get-hypervisor / list-hypervisors", hypervisor),
    ("update-hypervisor / put+get-hypervisor-property-mappings / start-virtual-machines-metadata-sync", hypervisor_extras),
    ("update-gateway-software-now / test-hypervisor-configuration / get-virtual-machine", gateway_extras),
    ("associate / disassociate-gateway-to-server", associate),
    ("tag-resource / list-tags-for-resource / untag-resource", tags),
    ("list-gateways across pages", list_gateways_paginated),
    ("list-virtual-machines", list_vms),
    ("ResourceNotFoundException reported", not_found),
    ("ValidationException reported", validation),
    ("delete-hypervisor / delete-gateway", delete),
]:
    suite.check(name, fn)
suite.finish()
