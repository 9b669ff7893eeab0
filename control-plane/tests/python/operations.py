"""Every one of the 25 Backup Gateway operations, happy path first, then the
not-found and conflict answers each one gives."""

import datetime

from bgwtest import (
    GATEWAY_ARN_RE,
    HYPERVISOR_ARN_RE,
    Suite,
    client,
    create_gateway,
    eq,
    expect_error,
    fake_arn,
    import_hypervisor,
    mint_activation_key,
    true,
    unique_name,
)

suite = Suite("operations")
c = client()
state = {}


def tags_of(arn):
    return {t["Key"]: t["Value"] for t in c.list_tags_for_resource(ResourceArn=arn)["Tags"]}


# --- gateways -------------------------------------------------------------------


def create_gateway_op():
    key = mint_activation_key()
    state["key"] = key
    name = unique_name("gw-ops")
    out = c.create_gateway(
        ActivationKey=key,
        GatewayDisplayName=name,
        GatewayType="BACKUP_VM",
        Tags=[{"Key": "team", "Value": "storage"}],
    )
    arn = out["GatewayArn"]
    true(GATEWAY_ARN_RE.match(arn), "gateway ARN %r is not in AWS form" % arn)
    state["gw"], state["gw_name"] = arn, name


def get_gateway_op():
    gw = c.get_gateway(GatewayArn=state["gw"])["Gateway"]
    eq(gw["GatewayArn"], state["gw"], "GatewayArn")
    eq(gw["GatewayDisplayName"], state["gw_name"], "GatewayDisplayName")
    eq(gw["GatewayType"], "BACKUP_VM", "GatewayType")
    true("HypervisorId" not in gw, "a new gateway has no hypervisor: %r" % gw)
    for field in ("LastSeenTime", "NextUpdateAvailabilityTime", "DeprecationDate"):
        if field in gw:
            true(isinstance(gw[field], datetime.datetime), "%s is not a timestamp: %r" % (field, gw[field]))


def list_gateways_op():
    found = [g for g in c.list_gateways()["Gateways"] if g["GatewayArn"] == state["gw"]]
    eq(len(found), 1, "gateway listed once")
    eq(found[0]["GatewayDisplayName"], state["gw_name"], "listed name")
    eq(found[0]["GatewayType"], "BACKUP_VM", "listed type")


def update_gateway_information_op():
    new_name = unique_name("gw-renamed")
    out = c.update_gateway_information(GatewayArn=state["gw"], GatewayDisplayName=new_name)
    eq(out["GatewayArn"], state["gw"], "GatewayArn")
    eq(c.get_gateway(GatewayArn=state["gw"])["Gateway"]["GatewayDisplayName"], new_name, "renamed")
    state["gw_name"] = new_name


def put_maintenance_weekly():
    out = c.put_maintenance_start_time(GatewayArn=state["gw"], HourOfDay=3, MinuteOfHour=30, DayOfWeek=0)
    eq(out["GatewayArn"], state["gw"], "GatewayArn")
    mst = c.get_gateway(GatewayArn=state["gw"])["Gateway"]["MaintenanceStartTime"]
    eq((mst["HourOfDay"], mst["MinuteOfHour"], mst.get("DayOfWeek"), mst.get("DayOfMonth")), (3, 30, 0, None), "weekly window")


def put_maintenance_monthly():
    c.put_maintenance_start_time(GatewayArn=state["gw"], HourOfDay=23, MinuteOfHour=59, DayOfMonth=28)
    mst = c.get_gateway(GatewayArn=state["gw"])["Gateway"]["MaintenanceStartTime"]
    eq((mst["HourOfDay"], mst["MinuteOfHour"], mst.get("DayOfWeek"), mst.get("DayOfMonth")), (23, 59, None, 28), "monthly window replaces weekly")


SCHEDULE = [
    {
        "AverageUploadRateLimitInBitsPerSec": 104857600,
        "StartHourOfDay": 9,
        "StartMinuteOfHour": 0,
        "EndHourOfDay": 17,
        "EndMinuteOfHour": 59,
        "DaysOfWeek": [1, 2, 3, 4, 5],
    },
    {
        "AverageUploadRateLimitInBitsPerSec": 8000000000000,
        "StartHourOfDay": 0,
        "StartMinuteOfHour": 0,
        "EndHourOfDay": 23,
        "EndMinuteOfHour": 59,
        "DaysOfWeek": [0, 6],
    },
]


def bandwidth_empty_by_default():
    out = c.get_bandwidth_rate_limit_schedule(GatewayArn=state["gw"])
    eq(out.get("GatewayArn"), state["gw"], "GatewayArn")
    eq(out.get("BandwidthRateLimitIntervals"), [], "schedule of a new gateway")


def bandwidth_put_get():
    out = c.put_bandwidth_rate_limit_schedule(GatewayArn=state["gw"], BandwidthRateLimitIntervals=SCHEDULE)
    eq(out["GatewayArn"], state["gw"], "GatewayArn")
    got = c.get_bandwidth_rate_limit_schedule(GatewayArn=state["gw"])["BandwidthRateLimitIntervals"]
    eq(got, SCHEDULE, "schedule read back")


def bandwidth_put_replaces_and_clears():
    c.put_bandwidth_rate_limit_schedule(GatewayArn=state["gw"], BandwidthRateLimitIntervals=SCHEDULE[:1])
    eq(c.get_bandwidth_rate_limit_schedule(GatewayArn=state["gw"])["BandwidthRateLimitIntervals"], SCHEDULE[:1], "replaced")
    c.put_bandwidth_rate_limit_schedule(GatewayArn=state["gw"], BandwidthRateLimitIntervals=[])
    eq(c.get_bandwidth_rate_limit_schedule(GatewayArn=state["gw"])["BandwidthRateLimitIntervals"], [], "cleared")


# --- hypervisors ----------------------------------------------------------------


def import_hypervisor_op():
    name = unique_name("hv-ops")
    out = c.import_hypervisor_configuration(
        Name=name,
        Host="vcenter.example.com",
        Username="administrator@vsphere.local",
        Password="s3cret-Passw0rd",
        Tags=[{"Key": "site", "Value": "dc1"}],
    )
    arn = out["HypervisorArn"]
    true(HYPERVISOR_ARN_RE.match(arn), "hypervisor ARN %r is not in AWS form" % arn)
    state["hv"], state["hv_name"] = arn, name


def get_hypervisor_op():
    hv = c.get_hypervisor(HypervisorArn=state["hv"])["Hypervisor"]
    eq(hv["HypervisorArn"], state["hv"], "HypervisorArn")
    eq(hv["Name"], state["hv_name"], "Name")
    eq(hv["Host"], "vcenter.example.com", "Host")
    eq(hv["State"], "PENDING", "State of a hypervisor without a gateway")
    true("Password" not in hv and "Username" not in hv, "credentials are never returned")


def list_hypervisors_op():
    found = [h for h in c.list_hypervisors()["Hypervisors"] if h["HypervisorArn"] == state["hv"]]
    eq(len(found), 1, "hypervisor listed once")
    eq((found[0]["Name"], found[0]["Host"], found[0]["State"]), (state["hv_name"], "vcenter.example.com", "PENDING"), "listed fields")


def update_hypervisor_op():
    new_name = unique_name("hv-renamed")
    out = c.update_hypervisor(HypervisorArn=state["hv"], Name=new_name, Host="10.0.0.5", Username="root", Password="another-one")
    eq(out["HypervisorArn"], state["hv"], "HypervisorArn")
    hv = c.get_hypervisor(HypervisorArn=state["hv"])["Hypervisor"]
    eq((hv["Name"], hv["Host"]), (new_name, "10.0.0.5"), "updated fields")
    state["hv_name"] = new_name


MAPPINGS = [
    {"VmwareCategory": "Environment", "VmwareTagName": "Production", "AwsTagKey": "env", "AwsTagValue": "prod"},
    {"VmwareCategory": "Owner", "VmwareTagName": "Storage Team", "AwsTagKey": "owner", "AwsTagValue": ""},
]
ROLE = "arn:aws:iam::123456789012:role/BackupGatewayTagSync"


def property_mappings_op():
    out = c.put_hypervisor_property_mappings(HypervisorArn=state["hv"], VmwareToAwsTagMappings=MAPPINGS, IamRoleArn=ROLE)
    eq(out["HypervisorArn"], state["hv"], "HypervisorArn")
    got = c.get_hypervisor_property_mappings(HypervisorArn=state["hv"])
    eq(got["HypervisorArn"], state["hv"], "HypervisorArn")
    eq(got["VmwareToAwsTagMappings"], MAPPINGS, "mappings read back")
    eq(got["IamRoleArn"], ROLE, "IamRoleArn")


def associate_op():
    out = c.associate_gateway_to_server(GatewayArn=state["gw"], ServerArn=state["hv"])
    eq(out["GatewayArn"], state["gw"], "GatewayArn")
    hid = c.get_gateway(GatewayArn=state["gw"])["Gateway"].get("HypervisorId")
    true(hid and hid in state["hv"], "GetGateway HypervisorId %r does not name %s" % (hid, state["hv"]))
    listed = [g for g in c.list_gateways()["Gateways"] if g["GatewayArn"] == state["gw"]][0]
    eq(listed.get("HypervisorId"), hid, "ListGateways HypervisorId")


def associate_twice_conflicts():
    other = import_hypervisor(c)
    state["hv_other"] = other
    expect_error(lambda: c.associate_gateway_to_server(GatewayArn=state["gw"], ServerArn=other), "ConflictException")


def delete_hypervisor_in_use_conflicts():
    expect_error(lambda: c.delete_hypervisor(HypervisorArn=state["hv"]), "ConflictException")
    c.get_hypervisor(HypervisorArn=state["hv"])


def test_hypervisor_configuration_op():
    # No agent is connected: the call is checked for its API contract only,
    # accepted or refused as a conflict, never a validation or server error.
    try:
        out = c.test_hypervisor_configuration(GatewayArn=state["gw"], Host="vcenter.example.com", Username="root", Password="pw")
        eq({k: v for k, v in out.items() if k != "ResponseMetadata"}, {}, "empty output")
    except Exception as err:  # noqa: BLE001
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        true(code == "ConflictException", "TestHypervisorConfiguration without an agent: %s" % err)


def start_metadata_sync_without_gateway_conflicts():
    # Imported by associate_twice_conflicts and served by no gateway.
    expect_error(
        lambda: c.start_virtual_machines_metadata_sync(HypervisorArn=state["hv_other"]),
        "ConflictException",
        mentions=["associate a gateway"],
    )
    status = c.get_hypervisor(HypervisorArn=state["hv_other"])["Hypervisor"].get("LatestMetadataSyncStatus")
    true(status is None, "a refused sync records no status, got %r" % status)


def start_metadata_sync_op():
    out = c.start_virtual_machines_metadata_sync(HypervisorArn=state["hv"])
    eq(out["HypervisorArn"], state["hv"], "HypervisorArn")


def update_software_now_op():
    out = c.update_gateway_software_now(GatewayArn=state["gw"])
    eq(out["GatewayArn"], state["gw"], "GatewayArn")


# --- tags -------------------------------------------------------------------------


def tags_from_create():
    eq(tags_of(state["gw"]), {"team": "storage"}, "gateway tags from CreateGateway")
    eq(tags_of(state["hv"]), {"site": "dc1"}, "hypervisor tags from ImportHypervisorConfiguration")


def tag_untag_gateway():
    out = c.tag_resource(ResourceARN=state["gw"], Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "backup"}])
    eq(out["ResourceARN"], state["gw"], "ResourceARN")
    listed = c.list_tags_for_resource(ResourceArn=state["gw"])
    eq(listed["ResourceArn"], state["gw"], "ResourceArn")
    eq(tags_of(state["gw"]), {"team": "backup", "env": "prod"}, "tags overwritten and added")
    out = c.untag_resource(ResourceARN=state["gw"], TagKeys=["team", "not-there"])
    eq(out["ResourceARN"], state["gw"], "ResourceARN")
    eq(tags_of(state["gw"]), {"env": "prod"}, "tags after untag")


def tag_untag_hypervisor():
    c.tag_resource(ResourceARN=state["hv"], Tags=[{"Key": "unicode ключ", "Value": "välue"}])
    eq(tags_of(state["hv"]), {"site": "dc1", "unicode ключ": "välue"}, "unicode tags")
    c.untag_resource(ResourceARN=state["hv"], TagKeys=["unicode ключ"])
    eq(tags_of(state["hv"]), {"site": "dc1"}, "tags after untag")


# --- virtual machines -------------------------------------------------------------


def list_vms_empty():
    out = c.list_virtual_machines()
    eq(out.get("VirtualMachines", []), [], "no VM before an agent syncs")
    true("NextToken" not in out, "no NextToken on an empty list")
    out = c.list_virtual_machines(HypervisorArn=state["hv"], MaxResults=5)
    eq(out.get("VirtualMachines", []), [], "no VM of this hypervisor")


def get_vm_not_found():
    expect_error(lambda: c.get_virtual_machine(ResourceArn=fake_arn("vm")), "ResourceNotFoundException")


# --- not found, for every operation that names a resource -------------------------

GW, HV = fake_arn("gateway"), fake_arn("hypervisor")
NOT_FOUND = [
    ("GetGateway", lambda: c.get_gateway(GatewayArn=GW)),
    ("DeleteGateway", lambda: c.delete_gateway(GatewayArn=GW)),
    ("UpdateGatewayInformation", lambda: c.update_gateway_information(GatewayArn=GW, GatewayDisplayName="x")),
    ("UpdateGatewaySoftwareNow", lambda: c.update_gateway_software_now(GatewayArn=GW)),
    ("PutMaintenanceStartTime", lambda: c.put_maintenance_start_time(GatewayArn=GW, HourOfDay=1, MinuteOfHour=0, DayOfWeek=1)),
    ("GetBandwidthRateLimitSchedule", lambda: c.get_bandwidth_rate_limit_schedule(GatewayArn=GW)),
    ("PutBandwidthRateLimitSchedule", lambda: c.put_bandwidth_rate_limit_schedule(GatewayArn=GW, BandwidthRateLimitIntervals=[])),
    ("DisassociateGatewayFromServer", lambda: c.disassociate_gateway_from_server(GatewayArn=GW)),
    ("TestHypervisorConfiguration", lambda: c.test_hypervisor_configuration(GatewayArn=GW, Host="vcenter.example.com")),
    ("GetHypervisor", lambda: c.get_hypervisor(HypervisorArn=HV)),
    ("DeleteHypervisor", lambda: c.delete_hypervisor(HypervisorArn=HV)),
    ("UpdateHypervisor", lambda: c.update_hypervisor(HypervisorArn=HV, Name="x")),
    ("GetHypervisorPropertyMappings", lambda: c.get_hypervisor_property_mappings(HypervisorArn=HV)),
    ("PutHypervisorPropertyMappings", lambda: c.put_hypervisor_property_mappings(HypervisorArn=HV, VmwareToAwsTagMappings=[], IamRoleArn=ROLE)),
    ("StartVirtualMachinesMetadataSync", lambda: c.start_virtual_machines_metadata_sync(HypervisorArn=HV)),
    ("GetVirtualMachine", lambda: c.get_virtual_machine(ResourceArn=fake_arn("vm"))),
    ("TagResource", lambda: c.tag_resource(ResourceARN=GW, Tags=[{"Key": "a", "Value": "b"}])),
    ("UntagResource", lambda: c.untag_resource(ResourceARN=HV, TagKeys=["a"])),
    ("ListTagsForResource", lambda: c.list_tags_for_resource(ResourceArn=fake_arn("vm"))),
]


# --- teardown: disassociate and delete ---------------------------------------------


def disassociate_op():
    out = c.disassociate_gateway_from_server(GatewayArn=state["gw"])
    eq(out["GatewayArn"], state["gw"], "GatewayArn")
    true("HypervisorId" not in c.get_gateway(GatewayArn=state["gw"])["Gateway"], "HypervisorId cleared")


def associate_unknown_hypervisor():
    err = None
    try:
        c.associate_gateway_to_server(GatewayArn=state["gw"], ServerArn=HV)
    except Exception as e:  # noqa: BLE001
        err = e
    code = getattr(err, "response", {}).get("Error", {}).get("Code") if err else None
    true(code in ("ResourceNotFoundException", "ValidationException", "ConflictException"),
         "associating an unknown hypervisor must fail with a client error, got %r" % (err or "success"))


def delete_hypervisor_op():
    out = c.delete_hypervisor(HypervisorArn=state["hv"])
    eq(out["HypervisorArn"], state["hv"], "HypervisorArn")
    expect_error(lambda: c.get_hypervisor(HypervisorArn=state["hv"]), "ResourceNotFoundException")
    true(all(h["HypervisorArn"] != state["hv"] for h in c.list_hypervisors()["Hypervisors"]), "deleted hypervisor still listed")
    c.delete_hypervisor(HypervisorArn=state["hv_other"])


def delete_gateway_op():
    out = c.delete_gateway(GatewayArn=state["gw"])
    eq(out["GatewayArn"], state["gw"], "GatewayArn")
    expect_error(lambda: c.get_gateway(GatewayArn=state["gw"]), "ResourceNotFoundException")
    true(all(g["GatewayArn"] != state["gw"] for g in c.list_gateways()["Gateways"]), "deleted gateway still listed")
    expect_error(lambda: c.list_tags_for_resource(ResourceArn=state["gw"]), "ResourceNotFoundException")


def consumed_key_refused():
    expect_error(
        lambda: c.create_gateway(ActivationKey=state["key"], GatewayDisplayName="again", GatewayType="BACKUP_VM"),
        "ConflictException",
        mentions=["activation key", "already used"],
    )


def unknown_key_refused():
    expect_error(
        lambda: c.create_gateway(ActivationKey="NEVER-ISSUED-0123456789", GatewayDisplayName="x", GatewayType="BACKUP_VM"),
        "ValidationException",
        mentions=["activation key"],
    )


def second_gateway_keeps_working():
    arn = create_gateway(c)
    true(arn != state["gw"], "a new gateway gets a new ARN")
    c.delete_gateway(GatewayArn=arn)


for name, fn in [
    ("CreateGateway", create_gateway_op),
    ("GetGateway", get_gateway_op),
    ("ListGateways", list_gateways_op),
    ("UpdateGatewayInformation", update_gateway_information_op),
    ("PutMaintenanceStartTime weekly", put_maintenance_weekly),
    ("PutMaintenanceStartTime monthly", put_maintenance_monthly),
    ("GetBandwidthRateLimitSchedule empty by default", bandwidth_empty_by_default),
    ("PutBandwidthRateLimitSchedule / Get round trip", bandwidth_put_get),
    ("PutBandwidthRateLimitSchedule replaces, empty list clears", bandwidth_put_replaces_and_clears),
    ("ImportHypervisorConfiguration", import_hypervisor_op),
    ("GetHypervisor", get_hypervisor_op),
    ("ListHypervisors", list_hypervisors_op),
    ("UpdateHypervisor", update_hypervisor_op),
    ("PutHypervisorPropertyMappings / GetHypervisorPropertyMappings", property_mappings_op),
    ("AssociateGatewayToServer", associate_op),
    ("AssociateGatewayToServer on a gateway that has a hypervisor -> Conflict", associate_twice_conflicts),
    ("DeleteHypervisor in use -> Conflict", delete_hypervisor_in_use_conflicts),
    ("TestHypervisorConfiguration accepted", test_hypervisor_configuration_op),
    ("StartVirtualMachinesMetadataSync without a gateway -> Conflict", start_metadata_sync_without_gateway_conflicts),
    ("StartVirtualMachinesMetadataSync accepted", start_metadata_sync_op),
    ("UpdateGatewaySoftwareNow accepted", update_software_now_op),
    ("tags given at creation", tags_from_create),
    ("TagResource / ListTagsForResource / UntagResource on a gateway", tag_untag_gateway),
    ("TagResource / UntagResource on a hypervisor", tag_untag_hypervisor),
    ("ListVirtualMachines empty, with and without filter", list_vms_empty),
    ("GetVirtualMachine unknown -> NotFound", get_vm_not_found),
]:
    suite.check(name, fn)

for op, call in NOT_FOUND:
    suite.check("%s unknown ARN -> ResourceNotFoundException" % op, expect_error, call, "ResourceNotFoundException")

for name, fn in [
    ("DisassociateGatewayFromServer", disassociate_op),
    ("AssociateGatewayToServer with an unknown hypervisor refused", associate_unknown_hypervisor),
    ("DeleteHypervisor", delete_hypervisor_op),
    ("DeleteGateway", delete_gateway_op),
    ("CreateGateway with a consumed activation key refused", consumed_key_refused),
    ("CreateGateway with an unknown activation key refused", unknown_key_refused),
    ("CreateGateway after deletes", second_gateway_keeps_working),
]:
    suite.check(name, fn)

suite.finish()
