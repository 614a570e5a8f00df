using Kvm.Model;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    private const double BytesPerMb = 1024 * 1024; // Proxmox's MB for mbps*

    /// <summary>The attributes of a disk that are I/O limits (each applies live through <see cref="ThrottleCommand"/>).</summary>
    public static readonly IReadOnlySet<string> ThrottleAttributes = new HashSet<string>(StringComparer.Ordinal)
    {
        "mbps", "mbps_rd", "mbps_wr", "mbps_max", "mbps_rd_max", "mbps_wr_max",
        "iops", "iops_rd", "iops_wr", "iops_max", "iops_rd_max", "iops_wr_max",
    };

    /// <summary>
    /// The I/O limits of disk <paramref name="slot"/> as QMP <c>block_set_io_throttle</c> on its device's block backend,
    /// which is where Proxmox's <c>-drive throttling.*</c> puts them too; with <c>-blockdev</c> there is no command-line
    /// form, so the agent sends this right after start, after a hot-plug, and on every change (all zeros lifts them).
    /// </summary>
    public static QmpCommand ThrottleCommand(VmSpec spec, string slot)
    {
        var disk = Defaults.Apply(spec).Disks![slot];
        static long Bytes(double? mb) => mb is { } v ? (long)Math.Round(v * BytesPerMb) : 0;
        var arguments = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["id"] = slot,
            ["bps"] = Bytes(disk.Mbps),
            ["bps_rd"] = Bytes(disk.MbpsRd),
            ["bps_wr"] = Bytes(disk.MbpsWr),
            ["iops"] = disk.Iops ?? 0,
            ["iops_rd"] = disk.IopsRd ?? 0,
            ["iops_wr"] = disk.IopsWr ?? 0,
        };
        foreach (var (name, value) in new (string, long?)[]
        {
            ("bps_max", disk.MbpsMax is null ? null : Bytes(disk.MbpsMax)), ("bps_rd_max", disk.MbpsRdMax is null ? null : Bytes(disk.MbpsRdMax)),
            ("bps_wr_max", disk.MbpsWrMax is null ? null : Bytes(disk.MbpsWrMax)), ("iops_max", disk.IopsMax), ("iops_rd_max", disk.IopsRdMax), ("iops_wr_max", disk.IopsWrMax),
        })
        {
            if (value is { } v)
                arguments[name] = v;
        }
        return new QmpCommand("block_set_io_throttle", arguments);
    }
}
