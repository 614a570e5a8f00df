namespace Kvm.Protocol.Pulumi;

/// <summary>
/// The command line the Pulumi engine gives a resource plugin:
/// <c>[--logtostderr] [-v=N] [--tracing ENDPOINT] [ENGINE_ADDRESS]</c>.
/// Unknown flags are ignored so a newer engine cannot break start-up.
/// </summary>
public sealed record PulumiPluginArguments
{
    /// <summary>host:port of the engine's gRPC server; null in debug-attach mode (Attach supplies it).</summary>
    public string? EngineAddress { get; init; }

    public bool LogToStderr { get; init; }

    public int Verbosity { get; init; }

    public string? TracingEndpoint { get; init; }

    public static PulumiPluginArguments Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var result = new PulumiPluginArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--logtostderr" or "-logtostderr")
            {
                result = result with { LogToStderr = true };
            }
            else if (TryValue(arg, "v", out var level))
            {
                var verbosity = level is not null
                    ? level
                    : i + 1 < args.Count && int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out _) ? args[++i] : "0";
                result = result with { Verbosity = int.TryParse(verbosity, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0 };
            }
            else if (TryValue(arg, "tracing", out var tracing))
            {
                result = result with { TracingEndpoint = tracing ?? (i + 1 < args.Count ? args[++i] : null) };
            }
            else if (arg.StartsWith('-'))
            {
                // e.g. --logflow; all engine flags are boolean or use "=" except -v and --tracing.
            }
            else if (result.EngineAddress is null)
            {
                result = result with { EngineAddress = arg };
            }
        }
        return result;
    }

    /// <summary>Matches -name, --name, -name=value and --name=value (Go flag syntax).</summary>
    private static bool TryValue(string arg, string name, out string? value)
    {
        value = null;
        var body = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg.StartsWith('-') ? arg[1..] : null;
        if (body is null || !body.StartsWith(name, StringComparison.Ordinal))
        {
            return false;
        }
        if (body.Length == name.Length)
        {
            return true;
        }
        if (body[name.Length] != '=')
        {
            return false;
        }
        value = body[(name.Length + 1)..];
        return true;
    }
}
