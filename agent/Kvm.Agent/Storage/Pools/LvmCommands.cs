using System.Globalization;

namespace Kvm.Agent.Storage.Pools;

/// <summary>One logical volume as <see cref="LvmCommands.List"/> reports it.</summary>
/// <param name="Name">LV name.</param>
/// <param name="SizeBytes">Virtual size in bytes.</param>
/// <param name="Attributes">lv_attr (first letter: <c>t</c> thin pool, <c>V</c> thin volume).</param>
/// <param name="PoolLv">The thin pool a thin volume lives in; empty for others.</param>
/// <param name="DataPercent">Share of the size that is allocated (thin pools and thin volumes); null when lvs prints none.</param>
public sealed record LogicalVolume(string Name, long SizeBytes, string Attributes, string PoolLv, double? DataPercent)
{
    /// <summary>True for a thin pool.</summary>
    public bool IsThinPool => Attributes.StartsWith('t');

    /// <summary>Bytes allocated in the thin pool.</summary>
    public long AllocatedBytes => DataPercent is { } p ? (long)(SizeBytes * p / 100) : 0;
}

/// <summary>
/// The LVM commands of <c>lvm-thin</c> pools as argv arrays (pure; the agent runs them through ICommandRunner). Sizes are
/// passed in bytes (<c>b</c> suffix), so LVM never rounds a request to a unit the user did not ask for. LVM is told not to
/// prompt (<c>--yes</c>) and to be quiet; output for parsing is byte sizes without suffixes, fields separated by '|'.
/// </summary>
public static class LvmCommands
{
    private const string Fields = "lv_name,lv_size,lv_attr,pool_lv,data_percent";

    /// <summary><c>lvs</c> of every logical volume of <paramref name="volumeGroup"/>.</summary>
    public static IReadOnlyList<string> List(string volumeGroup) =>
        ["lvs", "--noheadings", "--nosuffix", "--units", "b", "--separator", "|", "-o", Fields, volumeGroup];

    /// <summary>A thin volume of <paramref name="bytes"/> in <paramref name="volumeGroup"/>/<paramref name="thinPool"/>.</summary>
    public static IReadOnlyList<string> CreateThin(string volumeGroup, string thinPool, string name, long bytes) =>
        ["lvcreate", "--quiet", "--yes", "--type", "thin", "--virtualsize", Bytes(bytes), "--thinpool", thinPool, "--name", name, volumeGroup];

    /// <summary>Grows a thin volume to <paramref name="bytes"/> (LVM refuses to shrink with lvextend).</summary>
    public static IReadOnlyList<string> Extend(string volumeGroup, string name, long bytes) =>
        ["lvextend", "--quiet", "--size", Bytes(bytes), volumeGroup + "/" + name];

    /// <summary>Removes a logical volume.</summary>
    public static IReadOnlyList<string> Remove(string volumeGroup, string name) =>
        ["lvremove", "--quiet", "--yes", volumeGroup + "/" + name];

    /// <summary>Parses the output of <see cref="List"/>; lines that do not have the five fields are skipped.</summary>
    public static IReadOnlyList<LogicalVolume> ParseList(string output)
    {
        var result = new List<LogicalVolume>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = line.Split('|');
            if (f.Length != 5 || !long.TryParse(f[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                continue;
            double? percent = double.TryParse(f[4].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) ? p : null;
            result.Add(new LogicalVolume(f[0].Trim(), size, f[2].Trim(), f[3].Trim(), percent));
        }
        return result;
    }

    private static string Bytes(long bytes) => bytes.ToString(CultureInfo.InvariantCulture) + "b";
}
