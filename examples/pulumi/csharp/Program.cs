// A VM with an inline boot disk and a standalone data volume, on a bridge the stack creates.
// Build against the SDK generated from sdk/Kvm.Pulumi/schema.json (see docs/pulumi.md).
using System.Collections.Generic;
using Pulumi;
using Kvm = Pulumi.Kvm;

return await Deployment.RunAsync(() =>
{
    var data = new Kvm.Volume("data", new Kvm.VolumeArgs
    {
        Name = "web-data.qcow2",
        SizeGib = 5,
    });

    var lab = new Kvm.Network("lab", new Kvm.NetworkArgs
    {
        Name = "vmbr-lab",
        Address = "192.168.50.1/24",
    });

    var web = new Kvm.Vm("web", new Kvm.VmArgs
    {
        Name = "web-01",
        Description = "Managed by Pulumi",
        Tags = { "lab", "web" },
        Machine = "q35",
        Firmware = new Kvm.Inputs.VmFirmwareArgs { Type = "uefi" },
        Cpu = new Kvm.Inputs.VmCpuArgs { Sockets = 1, Cores = 2, Model = "x86-64-v2-AES" },
        Memory = new Kvm.Inputs.VmMemoryArgs { SizeMib = 2048 },
        Disks =
        {
            ["scsi0"] = new Kvm.Inputs.VmDiskArgs { SizeGib = 20, Discard = true },
            ["scsi1"] = new Kvm.Inputs.VmDiskArgs { VolumeId = data.VolumeId },
        },
        NetworkInterfaces =
        {
            ["net0"] = new Kvm.Inputs.VmNetworkInterfaceArgs { Bridge = lab.Name },
        },
        PowerState = "running",
    }, new CustomResourceOptions
    {
        // Creating a VM includes its disks; allow for a slow host.
        CustomTimeouts = new CustomTimeouts { Create = System.TimeSpan.FromMinutes(10) },
    });

    var host = Kvm.GetHost.Invoke();

    return new Dictionary<string, object?>
    {
        ["vmId"] = web.VmId,
        ["status"] = web.Status,
        ["console"] = web.ConsoleEndpoint,
        ["macAddresses"] = web.MacAddresses,
        ["qemuVersion"] = host.Apply(h => h.QemuVersion),
    };
});
