using Kvm.Agent.Storage;

namespace Kvm.Agent.Vms;

/// <summary>Host block devices held by running VMs, and their sizes for a VM's description.</summary>
public sealed partial class VmRuntime : IHostDeviceUsage
{
    /// <inheritdoc />
    public IReadOnlyList<(long VmId, string Slot, string Path, bool ReadOnly)> RunningHostDevices() =>
        [.. _monitors.Values.Where(m => !m.HasExited)
            .SelectMany(m => (m.StartedSpec.Disks ?? [])
                .Where(d => d.Value.HostDevice is not null)
                .Select(d => (m.VmId, d.Key, d.Value.HostDevice!, d.Value.ReadOnly == true)))];

    /// <summary>Slot → size in bytes of each host-device disk of <paramref name="spec"/> that can be read now; null when there is none.</summary>
    private static Dictionary<string, long>? HostDeviceSizes(Kvm.Model.VmSpec spec)
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (slot, disk) in spec.Disks ?? [])
        {
            if (disk.HostDevice is { } path && BlockDevices.SizeOf(path) is { } bytes)
                sizes[slot] = bytes;
        }
        return sizes.Count > 0 ? sizes : null;
    }
}
