"""Restart persistence, in two runs against the same data directory.

    persistence.py populate SNAPSHOT   create resources of every kind, save what Get/List return
    persistence.py verify SNAPSHOT     after a restart: everything reads back the same
"""

import json
import sys

from bgwtest import (
    Suite,
    client,
    eq,
    expect_error,
    mint_activation_key,
    true,
    unique_name,
)

mode, snapshot_path = sys.argv[1], sys.argv[2]
suite = Suite("persistence " + mode)
c = client()
ROLE = "arn:aws:iam::123456789012:role/BackupGatewayTagSync"


def strip(out):
    return {k: v for k, v in out.items() if k != "ResponseMetadata"}


def read_all(arns):
    """Everything the API returns about the saved resources, in JSON form."""
    gw, hv, spare = arns["gw"], arns["hv"], arns["spare_gw"]
    data = {
        "gateway": strip(c.get_gateway(GatewayArn=gw)),
        "spare_gateway": strip(c.get_gateway(GatewayArn=spare)),
        "schedule": strip(c.get_bandwidth_rate_limit_schedule(GatewayArn=gw)),
        "hypervisor": strip(c.get_hypervisor(HypervisorArn=hv)),
        "mappings": strip(c.get_hypervisor_property_mappings(HypervisorArn=hv)),
        "gateway_tags": strip(c.list_tags_for_resource(ResourceArn=gw)),
        "hypervisor_tags": strip(c.list_tags_for_resource(ResourceArn=hv)),
        "gateways": [g for g in c.list_gateways()["Gateways"]],
        "hypervisors": [h for h in c.list_hypervisors()["Hypervisors"]],
    }
    # LastSeenTime moves with agent heartbeats, not with restarts; compare the rest.
    for g in [data["gateway"]["Gateway"], data["spare_gateway"]["Gateway"]] + data["gateways"]:
        g.pop("LastSeenTime", None)
    return json.loads(json.dumps(data, default=str, sort_keys=True))


def populate():
    key = mint_activation_key()
    gw = c.create_gateway(ActivationKey=key, GatewayDisplayName=unique_name("persist-gw"), GatewayType="BACKUP_VM",
                          Tags=[{"Key": "a", "Value": "1"}])["GatewayArn"]
    spare = c.create_gateway(ActivationKey=mint_activation_key(), GatewayDisplayName=unique_name("spare-gw"),
                             GatewayType="BACKUP_VM")["GatewayArn"]
    c.put_maintenance_start_time(GatewayArn=gw, HourOfDay=4, MinuteOfHour=5, DayOfMonth=6)
    c.put_bandwidth_rate_limit_schedule(GatewayArn=gw, BandwidthRateLimitIntervals=[
        {"AverageUploadRateLimitInBitsPerSec": 51200, "StartHourOfDay": 0, "StartMinuteOfHour": 0,
         "EndHourOfDay": 5, "EndMinuteOfHour": 59, "DaysOfWeek": [0, 3]}])
    hv = c.import_hypervisor_configuration(Name=unique_name("persist-hv"), Host="vc.example.com", Username="u",
                                           Password="p", Tags=[{"Key": "b", "Value": "2"}])["HypervisorArn"]
    c.put_hypervisor_property_mappings(HypervisorArn=hv, IamRoleArn=ROLE, VmwareToAwsTagMappings=[
        {"VmwareCategory": "c", "VmwareTagName": "t", "AwsTagKey": "k", "AwsTagValue": "v"}])
    c.associate_gateway_to_server(GatewayArn=gw, ServerArn=hv)
    # A resource deleted before the restart stays deleted after it.
    gone = c.create_gateway(ActivationKey=mint_activation_key(), GatewayDisplayName=unique_name("gone-gw"),
                            GatewayType="BACKUP_VM")["GatewayArn"]
    c.delete_gateway(GatewayArn=gone)
    arns = {"gw": gw, "hv": hv, "spare_gw": spare, "gone": gone, "used_key": key, "unused_key": mint_activation_key()}
    with open(snapshot_path, "w") as f:
        json.dump({"arns": arns, "data": read_all(arns)}, f)


def verify():
    with open(snapshot_path) as f:
        saved = json.load(f)
    arns = saved["arns"]
    now = read_all(arns)
    for key in saved["data"]:
        eq(now[key], saved["data"][key], key + " after restart")
    expect_error(lambda: c.get_gateway(GatewayArn=arns["gone"]), "ResourceNotFoundException")
    expect_error(lambda: c.create_gateway(ActivationKey=arns["used_key"], GatewayDisplayName="again",
                                          GatewayType="BACKUP_VM"), "ConflictException", ["activation key", "already used"])
    arn = c.create_gateway(ActivationKey=arns["unused_key"], GatewayDisplayName=unique_name("after-restart"),
                           GatewayType="BACKUP_VM")["GatewayArn"]
    true(arn not in (arns["gw"], arns["spare_gw"], arns["gone"]), "a new ARN after restart")


if mode == "populate":
    suite.check("populate every kind of resource", populate)
elif mode == "verify":
    suite.check("everything reads back the same after a restart", verify)
else:
    raise SystemExit("usage: persistence.py populate|verify SNAPSHOT")
suite.finish()
