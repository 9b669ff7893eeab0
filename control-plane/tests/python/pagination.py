"""Pagination with the SDK paginators: several pages, ordered by ARN, no
duplicates and nothing lost when items are added during the walk."""

from bgwtest import (
    Suite,
    client,
    create_gateway,
    eq,
    expect_error,
    import_hypervisor,
    true,
)

suite = Suite("pagination")
c = client()
raw = client(validate=False)

ITEMS = 7
PAGE = 2


def gateways():
    return [create_gateway(c) for _ in range(ITEMS)]


def hypervisors():
    return [import_hypervisor(c) for _ in range(ITEMS)]


GWS = suite.check("create %d gateways" % ITEMS, gateways) or []
HVS = suite.check("create %d hypervisors" % ITEMS, hypervisors) or []

LISTS = {
    "ListGateways": ("list_gateways", "Gateways", "GatewayArn", GWS, lambda: create_gateway(c)),
    "ListHypervisors": ("list_hypervisors", "Hypervisors", "HypervisorArn", HVS, lambda: import_hypervisor(c)),
}


def paginator_walk(op):
    method, key, arn_key, created, _ = LISTS[op]
    pages = list(c.get_paginator(method).paginate(PaginationConfig={"PageSize": PAGE}))
    true(len(pages) >= (ITEMS + PAGE - 1) // PAGE, "only %d pages for %d items" % (len(pages), ITEMS))
    for page in pages[:-1]:
        eq(len(page[key]), PAGE, "a full page holds MaxResults items")
        true(page.get("NextToken"), "every page but the last carries a NextToken")
    true(not pages[-1].get("NextToken"), "the last page has no NextToken")
    arns = [item[arn_key] for page in pages for item in page[key]]
    eq(len(arns), len(set(arns)), "no item twice")
    eq(arns, sorted(arns), "ordered by ARN")
    missing = set(created) - set(arns)
    true(not missing, "items missing from the walk: %s" % sorted(missing))


def paginator_max_items(op):
    method, key, _arn_key, _created, _ = LISTS[op]
    result = c.get_paginator(method).paginate(PaginationConfig={"PageSize": PAGE, "MaxItems": 3}).build_full_result()
    eq(len(result[key]), 3, "MaxItems")
    true(result.get("NextToken"), "a resume token when MaxItems stops early")


def stable_under_writes(op):
    method, key, arn_key, _created, add = LISTS[op]
    before = {item[arn_key] for page in c.get_paginator(method).paginate() for item in page[key]}
    seen, token, added, pages = [], None, [], 0
    while True:
        args = {"MaxResults": PAGE}
        if token:
            args["NextToken"] = token
        page = getattr(c, method)(**args)
        pages += 1
        seen += [item[arn_key] for item in page[key]]
        if pages <= 2:
            added += [add(), add()]
        token = page.get("NextToken")
        if not token:
            break
        true(pages < 100, "the walk does not end")
    eq(len(seen), len(set(seen)), "no item twice while items are added")
    missing = before - set(seen)
    true(not missing, "items that existed before the walk were skipped: %s" % sorted(missing))
    eq(seen, sorted(seen), "still ordered by ARN")


def list_vms():
    pages = list(c.get_paginator("list_virtual_machines").paginate(PaginationConfig={"PageSize": PAGE}))
    eq([vm for page in pages for vm in page.get("VirtualMachines", [])], [], "no VM before an agent syncs")
    true(not pages[-1].get("NextToken"), "no NextToken on the empty list")
    filtered = c.list_virtual_machines(HypervisorArn=HVS[0], MaxResults=PAGE)
    eq(filtered.get("VirtualMachines", []), [], "no VM on a new hypervisor")


def bad_tokens(op_method):
    expect_error(lambda: getattr(raw, op_method)(NextToken="not-a-token-this-server-issued"), "ValidationException", ["NextToken"])
    expect_error(lambda: getattr(raw, op_method)(MaxResults=0), "ValidationException", ["MaxResults"])


def concurrent_creates():
    """Parallel writers: every created gateway is listed exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda _: create_gateway(c), range(24)))
    eq(len(set(created)), len(created), "distinct ARNs under concurrency")
    listed = [g["GatewayArn"] for page in c.get_paginator("list_gateways").paginate(PaginationConfig={"PageSize": 5}) for g in page["Gateways"]]
    eq(len(listed), len(set(listed)), "no gateway listed twice")
    missing = set(created) - set(listed)
    true(not missing, "concurrently created gateways missing: %s" % sorted(missing))


for op in LISTS:
    suite.check("%s paginator over several pages" % op, paginator_walk, op)
    suite.check("%s paginator MaxItems resumes" % op, paginator_max_items, op)
    suite.check("%s stable while items are added" % op, stable_under_writes, op)
suite.check("ListVirtualMachines paginator, empty result", list_vms)
suite.check("24 gateways created by 8 threads, each listed once", concurrent_creates)
for method in ("list_gateways", "list_hypervisors", "list_virtual_machines"):
    suite.check("%s refuses a forged NextToken and MaxResults 0" % method, bad_tokens, method)

suite.finish()
