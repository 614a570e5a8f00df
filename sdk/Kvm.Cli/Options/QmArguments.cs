using System.Text.RegularExpressions;

namespace Kvm.Cli.Options;

/// <summary>
/// qm's spellings rewritten to kvmctl's before parsing, for create and set only: single-dash long options
/// (<c>-memory 2048</c>) and per-slot device options (<c>--scsi0 16G</c>, <c>-net0 e1000</c>,
/// <c>--ide2 default/x.iso,media=cdrom</c>).
/// </summary>
public static partial class QmArguments
{
    private static readonly HashSet<string> GlobalOptionsWithValue = ["--endpoint", "--token", "--token-file"];

    /// <summary>The rewritten arguments; <paramref name="knownLongOptions"/> are the create/set option names.</summary>
    public static string[] Normalize(string[] args, ISet<string> knownLongOptions, ISet<string> flagOptions)
    {
        var verb = VerbIndex(args);
        if (verb < 0 || args[verb] is not ("create" or "set"))
            return args;
        var result = new List<string>(args[..(verb + 1)]);
        for (var i = verb + 1; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                result.AddRange(args[i..]);
                break;
            }
            var name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg.StartsWith('-') && arg.Length > 2 ? arg[1..] : null;
            if (name is not null && SlotOption().Match(name) is { Success: true } slot && i + 1 < args.Length)
            {
                var value = args[++i];
                var bus = slot.Groups[1].Value;
                var target = bus == "net" ? "--net"
                    : value.Contains("media=cdrom", StringComparison.Ordinal) ? "--cdrom"
                    : "--disk";
                result.Add(target);
                result.Add($"{name}={value}");
                continue;
            }
            if (name is not null && knownLongOptions.Contains("--" + name))
            {
                result.Add("--" + name);
                // The parser only takes true/false after a flag; qm writes 1/0.
                if (flagOptions.Contains("--" + name) && i + 1 < args.Length && BoolWord(args[i + 1]) is { } flag)
                {
                    result.Add(flag);
                    i++;
                }
                continue;
            }
            result.Add(arg);
        }
        return [.. result];
    }

    private static string? BoolWord(string text) => text.ToLowerInvariant() switch
    {
        "1" or "on" or "yes" or "true" => "true",
        "0" or "off" or "no" or "false" => "false",
        _ => null,
    };

    private static int VerbIndex(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (GlobalOptionsWithValue.Contains(args[i]))
            {
                i++;
                continue;
            }
            if (!args[i].StartsWith('-') && !args[i].StartsWith('['))
                return i;
        }
        return -1;
    }

    [GeneratedRegex("^(ide|sata|scsi|virtio|net)([0-9]{1,2})$")]
    private static partial Regex SlotOption();
}
