"""Creates demo tag categories and tags on a vCenter (or vcsim) and attaches them to its VMs.

Usage: python seed_vcenter_tags.py HOST:PORT USER PASSWORD CA_FILE

Categories: env (prod / dev), tier (gold / silver / bronze), owner (team-a / team-b).
Every VM gets one tag of each category, round-robin, so the property mappings have work to do.
Lists the VMs with pyvmomi (one property collector call), tags them with the vSphere
Automation REST API (legacy /rest, which both vCenter and vcsim serve).
"""

import json
import ssl
import sys
import urllib.request
from base64 import b64encode

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

CATEGORIES = {
    "env": ["prod", "dev"],
    "tier": ["gold", "silver", "bronze"],
    "owner": ["team-a", "team-b"],
}


def vm_morefs(host, port, user, password, ctx):
    si = SmartConnect(host=host, port=port, user=user, pwd=password, sslContext=ctx)
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
                obj=view, skip=True,
                selectSet=[vmodl.query.PropertyCollector.TraversalSpec(
                    name="v", path="view", skip=False, type=vim.view.ContainerView)])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])])
        result = content.propertyCollector.RetrieveContents([spec])
        return sorted((o.obj._moId for o in result), key=lambda m: int(m.split("-")[-1]) if m.split("-")[-1].isdigit() else 0)
    finally:
        Disconnect(si)


class Rest:
    def __init__(self, base, user, password, ctx):
        self.base, self.ctx = base + "/rest", ctx
        auth = b64encode(f"{user}:{password}".encode()).decode()
        self.session = self.call("POST", "/com/vmware/cis/session", headers={"Authorization": "Basic " + auth})

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if getattr(self, "session", None):
            req.add_header("vmware-api-session-id", self.session)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            text = resp.read()
        return json.loads(text).get("value") if text else None


def main():
    hostport, user, password, ca = sys.argv[1:5]
    host, port = hostport.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    morefs = vm_morefs(host, int(port), user, password, ctx)
    rest = Rest(f"https://{hostport}", user, password, ctx)
    attached = 0
    for category, tags in CATEGORIES.items():
        cat_id = rest.call("POST", "/com/vmware/cis/tagging/category", {"create_spec": {
            "name": category, "description": f"demo category {category}",
            "cardinality": "SINGLE", "associable_types": ["VirtualMachine"]}})
        for i, tag in enumerate(tags):
            tag_id = rest.call("POST", "/com/vmware/cis/tagging/tag", {"create_spec": {
                "name": tag, "description": f"{category}={tag}", "category_id": cat_id}})
            chosen = [m for n, m in enumerate(morefs) if n % len(tags) == i]
            for start in range(0, len(chosen), 1000):
                objs = [{"type": "VirtualMachine", "id": m} for m in chosen[start:start + 1000]]
                rest.call("POST", f"/com/vmware/cis/tagging/tag-association/id:{tag_id}"
                          "?~action=attach-tag-to-multiple-objects", {"object_ids": objs})
            attached += len(chosen)
    print(f"{len(morefs)} VMs, {sum(len(t) for t in CATEGORIES.values())} tags in "
          f"{len(CATEGORIES)} categories, {attached} tag associations")


if __name__ == "__main__":
    main()
