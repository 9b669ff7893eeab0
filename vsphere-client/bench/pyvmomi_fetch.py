"""Reference point for the inventory benchmark: pyvmomi fetching five plain
properties of every VM with one container view and RetrievePropertiesEx paging.

usage: pyvmomi_fetch.py HOST PORT USER PASSWORD CA_FILE [plain|full]
prints: VMS SECONDS (login included)

With "full", it fetches the property list vsphere-client's listing uses
(including config.hardware.device) instead of the five plain properties.
"""
import ssl
import sys
import time

from pyVim.connect import SmartConnect, Disconnect
from pyVmomi import vim, vmodl


PLAIN = ["name", "config.instanceUuid", "config.uuid", "runtime.powerState", "guest.hostName"]
FULL = ["name", "config.instanceUuid", "config.uuid", "config.template",
        "config.changeTrackingEnabled", "config.hardware.device", "guest.hostName",
        "guest.ipAddress", "runtime.powerState", "runtime.host", "parent", "parentVApp",
        "resourcePool", "datastore"]


def main():
    host, port, user, password, ca = sys.argv[1:6]
    props = FULL if sys.argv[6:7] == ["full"] else PLAIN
    t0 = time.monotonic()
    ctx = ssl.create_default_context(cafile=ca)
    si = SmartConnect(host=host, port=int(port), user=user, pwd=password, sslContext=ctx)
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
            obj=view, skip=True,
            selectSet=[vmodl.query.PropertyCollector.TraversalSpec(
                name="view", path="view", skip=False, type=vim.view.ContainerView)])],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(
            type=vim.VirtualMachine, all=False,
            pathSet=props)])
    pc = content.propertyCollector
    result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=1000))
    count = 0
    while result is not None:
        for obj in result.objects:
            props = {p.name: p.val for p in obj.propSet}
            count += 1 if "name" in props else 0
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)
    view.Destroy()
    Disconnect(si)
    print(count, "%.3f" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
