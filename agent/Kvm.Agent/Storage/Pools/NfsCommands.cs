using System.Text;

namespace Kvm.Agent.Storage.Pools;

/// <summary>
/// The mount commands of <c>nfs</c> pools as argv arrays (pure), and the reading of /proc/self/mountinfo that tells
/// whether the pool's mount point is mounted. The agent always mounts with <c>nosuid,nodev,noexec</c>: a pool holds
/// disk images, never programs.
/// </summary>
public static class NfsCommands
{
    /// <summary>Options the agent puts before the user's (the model refuses user options that would undo them).</summary>
    public const string FixedOptions = "nosuid,nodev,noexec";

    /// <summary>The mount source: <c>server:/export</c>, with an IPv6 address in brackets.</summary>
    public static string Source(string server, string export) =>
        (server.Contains(':', StringComparison.Ordinal) ? "[" + server + "]" : server) + ":" + export;

    /// <summary>Mounts the export at <paramref name="mountPoint"/>.</summary>
    public static IReadOnlyList<string> Mount(string server, string export, string? options, string mountPoint) =>
        ["mount", "-t", "nfs", "-o", string.IsNullOrEmpty(options) ? FixedOptions : FixedOptions + "," + options, Source(server, export), mountPoint];

    /// <summary>Unmounts <paramref name="mountPoint"/>.</summary>
    public static IReadOnlyList<string> Unmount(string mountPoint) => ["umount", mountPoint];

    /// <summary>
    /// The mount source and file-system type mounted at <paramref name="mountPoint"/> according to a mountinfo text, or
    /// null when nothing is; the last (topmost) mount wins. Fields are octal-escaped (<c>\040</c> for a space).
    /// </summary>
    public static (string Source, string FsType)? MountedAt(string mountinfo, string mountPoint)
    {
        (string, string)? found = null;
        foreach (var line in mountinfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-");
            if (fields.Length < 5 || dash < 0 || dash + 2 >= fields.Length)
                continue;
            if (Unescape(fields[4]) == mountPoint)
                found = (Unescape(fields[dash + 2]), fields[dash + 1]);
        }
        return found;
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
            return field;
        var bytes = new List<byte>();
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                bytes.Add((byte)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '3' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
