"""Rules the model cannot express: bandwidth interval overlap and order, rate
bounds, interval count, maintenance day choice, property mapping count,
reserved tag keys, and conflicts between resources."""

from bgwtest import (
    Suite,
    client,
    create_gateway,
    eq,
    expect_error,
    import_hypervisor,
    mint_activation_key,
    unique_name,
)

suite = Suite("semantics")
c = client(validate=False)
GW = create_gateway(c)
HV = import_hypervisor(c)
ROLE = "arn:aws:iam::123456789012:role/BackupGatewayTagSync"


def iv(start, end, days=(1,), rate=1048576):
    """An interval from "HH:MM" to "HH:MM" on the given days."""
    sh, sm = map(int, start.split(":"))
    eh, em = map(int, end.split(":"))
    out = {"StartHourOfDay": sh, "StartMinuteOfHour": sm, "EndHourOfDay": eh, "EndMinuteOfHour": em, "DaysOfWeek": list(days)}
    if rate is not None:
        out["AverageUploadRateLimitInBitsPerSec"] = rate
    return out


def put(intervals):
    return c.put_bandwidth_rate_limit_schedule(GatewayArn=GW, BandwidthRateLimitIntervals=intervals)


def accepted(intervals):
    put(intervals)
    eq(c.get_bandwidth_rate_limit_schedule(GatewayArn=GW)["BandwidthRateLimitIntervals"], intervals, "stored schedule")


def refused(intervals, *mentions):
    before = c.get_bandwidth_rate_limit_schedule(GatewayArn=GW)["BandwidthRateLimitIntervals"]
    expect_error(lambda: put(intervals), "ValidationException", mentions=mentions)
    eq(c.get_bandwidth_rate_limit_schedule(GatewayArn=GW)["BandwidthRateLimitIntervals"], before, "a refused Put leaves the schedule alone")


# Bandwidth schedule.
suite.check("overlapping intervals on a shared day refused", refused, [iv("00:00", "01:59", (1, 2)), iv("01:30", "02:00", (2, 3))], "overlap")
suite.check("an interval ending 01:00 overlaps one starting 01:00 (end minute is inclusive)", refused, [iv("00:00", "01:00"), iv("01:00", "02:00")], "overlap")
suite.check("identical intervals overlap", refused, [iv("10:00", "11:00"), iv("10:00", "11:00")], "overlap")
suite.check("adjacent intervals 00:00-00:59 and 01:00-01:59 accepted", accepted, [iv("00:00", "00:59"), iv("01:00", "01:59")])
suite.check("same hours on different days accepted", accepted, [iv("00:00", "23:59", (1,)), iv("00:00", "23:59", (2,))])
suite.check("end before start refused", refused, [iv("10:00", "09:59")])
suite.check("end minute before start minute in the same hour refused", refused, [iv("10:30", "10:29")])
suite.check("a one-minute interval (end == start) accepted", accepted, [iv("10:30", "10:30")])
suite.check("whole week 00:00-23:59 accepted", accepted, [iv("00:00", "23:59", range(7))])
suite.check("rate 51,199 bps refused", refused, [iv("00:00", "01:00", rate=51199)], "AverageUploadRateLimitInBitsPerSec")
suite.check("rate 51,200 bps accepted", accepted, [iv("00:00", "01:00", rate=51200)])
suite.check("rate 8e12 bps accepted", accepted, [iv("00:00", "01:00", rate=8000000000000)])
suite.check("rate 8e12 + 1 bps refused", refused, [iv("00:00", "01:00", rate=8000000000001)], "AverageUploadRateLimitInBitsPerSec")
twenty = [iv("%02d:00" % h, "%02d:59" % h, (0,)) for h in range(20)]
suite.check("20 intervals accepted", accepted, twenty)
suite.check("21 intervals refused", refused, twenty + [iv("20:00", "20:59", (0,))], "BandwidthRateLimitIntervals")
suite.check("an empty schedule accepted", accepted, [])

# Maintenance start time.
def maintenance(**kw):
    return c.put_maintenance_start_time(GatewayArn=GW, **kw)


def maintenance_refused(mentions, **kw):
    expect_error(lambda: maintenance(**kw), "ValidationException", mentions=mentions)


suite.check("maintenance with neither day of week nor day of month refused", maintenance_refused, ["DayOf"], HourOfDay=1, MinuteOfHour=0)
suite.check("maintenance with both day of week and day of month refused", maintenance_refused, ["DayOf"], HourOfDay=1, MinuteOfHour=0, DayOfWeek=2, DayOfMonth=3)
suite.check("maintenance without HourOfDay refused", maintenance_refused, ["HourOfDay"], MinuteOfHour=0, DayOfWeek=2)
suite.check("maintenance without MinuteOfHour refused", maintenance_refused, ["MinuteOfHour"], HourOfDay=1, DayOfWeek=2)
suite.check("maintenance on day of month 28 accepted", maintenance, HourOfDay=0, MinuteOfHour=0, DayOfMonth=28)
suite.check("maintenance on Saturday accepted", maintenance, HourOfDay=23, MinuteOfHour=59, DayOfWeek=6)


# Property mappings.
def mappings(n):
    return [
        {"VmwareCategory": "cat%d" % i, "VmwareTagName": "tag%d" % i, "AwsTagKey": "key%d" % i, "AwsTagValue": "v"}
        for i in range(n)
    ]


def put_mappings(n):
    c.put_hypervisor_property_mappings(HypervisorArn=HV, VmwareToAwsTagMappings=mappings(n), IamRoleArn=ROLE)
    eq(len(c.get_hypervisor_property_mappings(HypervisorArn=HV)["VmwareToAwsTagMappings"]), n, "stored mappings")


suite.check("10 property mappings accepted", put_mappings, 10)
suite.check(
    "11 property mappings refused",
    expect_error,
    lambda: c.put_hypervisor_property_mappings(HypervisorArn=HV, VmwareToAwsTagMappings=mappings(11), IamRoleArn=ROLE),
    "ValidationException",
    ["VmwareToAwsTagMappings"],
)

# Reserved tag keys.
suite.check(
    "TagResource with an aws: key refused",
    expect_error,
    lambda: c.tag_resource(ResourceARN=GW, Tags=[{"Key": "aws:backup", "Value": "x"}]),
    "ValidationException",
    ["aws:"],
)
suite.check(
    "CreateGateway with an aws: tag key refused",
    expect_error,
    lambda: c.create_gateway(ActivationKey=mint_activation_key(), GatewayDisplayName=unique_name("gw"), GatewayType="BACKUP_VM", Tags=[{"Key": "aws:x", "Value": "y"}]),
    "ValidationException",
    ["aws:"],
)
suite.check(
    "ImportHypervisorConfiguration with an aws: tag key refused",
    expect_error,
    lambda: c.import_hypervisor_configuration(Name=unique_name("hv"), Host="vcenter.example.com", Tags=[{"Key": "aws:x", "Value": "y"}]),
    "ValidationException",
    ["aws:"],
)
suite.check("a key merely containing aws: accepted", c.tag_resource, ResourceARN=GW, Tags=[{"Key": "my-aws:key", "Value": "x"}])


# Conflicts.
def conflicts():
    other = import_hypervisor(c)
    c.associate_gateway_to_server(GatewayArn=GW, ServerArn=HV)
    expect_error(lambda: c.associate_gateway_to_server(GatewayArn=GW, ServerArn=other), "ConflictException")
    expect_error(lambda: c.delete_hypervisor(HypervisorArn=HV), "ConflictException")
    c.disassociate_gateway_from_server(GatewayArn=GW)
    c.delete_hypervisor(HypervisorArn=other)


suite.check("a second hypervisor for a gateway, deleting a hypervisor in use -> Conflict", conflicts)


def key_used_twice():
    key = mint_activation_key()
    c.create_gateway(ActivationKey=key, GatewayDisplayName=unique_name("gw"), GatewayType="BACKUP_VM")
    expect_error(
        lambda: c.create_gateway(ActivationKey=key, GatewayDisplayName=unique_name("gw"), GatewayType="BACKUP_VM"),
        "ConflictException",
        ["activation key", "already used"],
    )


suite.check("an activation key works once", key_used_twice)

suite.finish()
