using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>Disk I/O limits, as Proxmox's <c>mbps*</c> and <c>iops*</c> drive options; all change live.</summary>
public sealed partial class DiskSpec
{
    private const string Mb = " in megabytes per second (MiB/s, 1 MiB = 1048576 bytes, as Proxmox counts them). Changes apply live.";
    private const string Ops = " in operations per second. Changes apply live.";
    private const string Burst = " The guest may run at this rate until its burst budget (one second at the burst rate) is spent.";

    /// <summary>Total bandwidth limit.</summary>
    [Setting("Read plus write bandwidth limit" + Mb, Min = 0.001, Max = 1_000_000, Update = UpdateKind.Live)]
    public double? Mbps { get; set; }

    /// <summary>Read bandwidth limit.</summary>
    [Setting("Read bandwidth limit" + Mb, Min = 0.001, Max = 1_000_000, Update = UpdateKind.Live)]
    public double? MbpsRd { get; set; }

    /// <summary>Write bandwidth limit.</summary>
    [Setting("Write bandwidth limit" + Mb, Min = 0.001, Max = 1_000_000, Update = UpdateKind.Live)]
    public double? MbpsWr { get; set; }

    /// <summary>Total bandwidth burst.</summary>
    [Setting("Read plus write bandwidth burst" + Mb + Burst + " Needs `mbps`.", Min = 0.001, Max = 1_000_000, Update = UpdateKind.Live)]
    public double? MbpsMax { get; set; }

    /// <summary>Read bandwidth burst.</summary>
    [Setting("Read bandwidth burst" + Mb + Burst + " Needs `mbps_rd`.", Min = 0.001, Max = 1_000_000, Update = UpdateKind.Live)]
    public double? MbpsRdMax { get; set; }

    /// <summary>Write bandwidth burst.</summary>
    [Setting("Write bandwidth burst" + Mb + Burst + " Needs `mbps_wr`.", Min = 0.001, Max = 1_000_000, Update = UpdateKind.Live)]
    public double? MbpsWrMax { get; set; }

    /// <summary>Total IOPS limit.</summary>
    [Setting("Read plus write limit" + Ops, Min = 1, Max = 1_000_000_000, Update = UpdateKind.Live)]
    public long? Iops { get; set; }

    /// <summary>Read IOPS limit.</summary>
    [Setting("Read limit" + Ops, Min = 1, Max = 1_000_000_000, Update = UpdateKind.Live)]
    public long? IopsRd { get; set; }

    /// <summary>Write IOPS limit.</summary>
    [Setting("Write limit" + Ops, Min = 1, Max = 1_000_000_000, Update = UpdateKind.Live)]
    public long? IopsWr { get; set; }

    /// <summary>Total IOPS burst.</summary>
    [Setting("Read plus write burst" + Ops + Burst + " Needs `iops`.", Min = 1, Max = 1_000_000_000, Update = UpdateKind.Live)]
    public long? IopsMax { get; set; }

    /// <summary>Read IOPS burst.</summary>
    [Setting("Read burst" + Ops + Burst + " Needs `iops_rd`.", Min = 1, Max = 1_000_000_000, Update = UpdateKind.Live)]
    public long? IopsRdMax { get; set; }

    /// <summary>Write IOPS burst.</summary>
    [Setting("Write burst" + Ops + Burst + " Needs `iops_wr`.", Min = 1, Max = 1_000_000_000, Update = UpdateKind.Live)]
    public long? IopsWrMax { get; set; }

    /// <summary>Any limit set.</summary>
    public bool HasThrottle() =>
        Mbps is not null || MbpsRd is not null || MbpsWr is not null || Iops is not null || IopsRd is not null || IopsWr is not null;

    private void ValidateThrottle(ValidationContext context, AttrPath path)
    {
        // QEMU takes either a total or per-direction limits of one kind, and a burst only above its limit.
        if (Mbps is not null && (MbpsRd is not null || MbpsWr is not null))
            context.Add(path.Attr("mbps"), "a total limit cannot be combined with `mbps_rd` or `mbps_wr`.");
        if (Iops is not null && (IopsRd is not null || IopsWr is not null))
            context.Add(path.Attr("iops"), "a total limit cannot be combined with `iops_rd` or `iops_wr`.");
        foreach (var (name, limit, burst) in new (string, double?, double?)[]
        {
            ("mbps_max", Mbps, MbpsMax), ("mbps_rd_max", MbpsRd, MbpsRdMax), ("mbps_wr_max", MbpsWr, MbpsWrMax),
            ("iops_max", Iops, IopsMax), ("iops_rd_max", IopsRd, IopsRdMax), ("iops_wr_max", IopsWr, IopsWrMax),
        })
        {
            if (burst is null)
                continue;
            if (limit is null)
                context.Add(path.Attr(name), $"needs `{name[..^4]}` (a burst is above a limit).");
            else if (burst < limit)
                context.Add(path.Attr(name), $"is below `{name[..^4]}` ({limit}); a burst must be at least the limit.");
        }
    }
}
