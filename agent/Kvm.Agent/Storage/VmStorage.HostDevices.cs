using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Storage;

/// <summary>Disks that are host block devices (<c>host_device</c>): checked, never created or deleted.</summary>
public sealed partial class VmStorage
{
    /// <summary>Adds a problem for each host-device disk of <paramref name="effective"/> that is not a block device now.</summary>
    private static void CheckHostDevices(VmSpec effective, List<ProblemError> errors)
    {
        foreach (var (slot, disk) in effective.Disks ?? [])
        {
            if (disk.HostDevice is { } path && BlockDevices.Check(path).Problem is { } problem)
                errors.Add(new ProblemError(AttrPath.Root.Attr("disks").Key(slot).Attr("host_device").ToString(), problem));
        }
    }

    /// <summary>
    /// The raw file of a host-device disk, or null with a problem: the path must be a block device, and no other running VM
    /// may hold the same device (by device number, so two links to one device count as one) unless both attach it read-only.
    /// </summary>
    private DiskFile? HostDeviceFile(long vmId, string slot, DiskSpec disk, AttrPath at, List<ProblemError> errors, List<string> conflicts)
    {
        var attribute = at.Attr("host_device");
        var path = disk.HostDevice!;
        var (device, problem) = BlockDevices.Check(path);
        if (device is null)
        {
            errors.Add(new ProblemError(attribute.ToString(), problem!));
            return null;
        }
        var readOnly = disk.ReadOnly == true;
        var users = (services.GetService<IHostDeviceUsage>()?.RunningHostDevices() ?? [])
            .Where(u => u.VmId != vmId && !(readOnly && u.ReadOnly) && BlockDevices.Check(u.Path).Device == device)
            .Select(u => $"{u.VmId}/{u.Slot}{(u.ReadOnly ? " (read-only)" : "")}")
            .ToList();
        if (users.Count > 0)
            conflicts.Add($"{attribute}: host device \"{path}\" is in use by running VM {string.Join(", ", users)}; " +
                "two running VMs may share a device only when both attach it read-only.");
        return new DiskFile(path, "raw", HostDevice: true);
    }
}
