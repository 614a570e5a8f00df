using System.Globalization;
using System.Net;

namespace Kvm.Agent;

/// <summary>
/// The agent's configuration, from its command line and environment. Paths are made absolute once here so
/// nothing downstream depends on the working directory.
/// </summary>
public sealed record AgentOptions
{
    /// <summary>
    /// Where Kestrel listens: an <see cref="IPEndPoint"/> (port 0: any free port, for tests) or a
    /// <see cref="System.Net.Sockets.UnixDomainSocketEndPoint"/> for local clients.
    /// </summary>
    public EndPoint Listen { get; init; } = new IPEndPoint(IPAddress.Loopback, 8680);

    /// <summary>VM definitions, logs, EFI variable stores, the generated token.</summary>
    public string DataDir { get; init; } = "/var/lib/kvm-agent";

    /// <summary>Per-VM QMP sockets and pidfiles; short, because a socket path must stay under 108 bytes.</summary>
    public string RunDir { get; init; } = "/run/kvm-agent";

    /// <summary>Accelerator for VMs that leave <c>kvm</c> unset: auto, kvm or tcg.</summary>
    public string Accel { get; init; } = "auto";

    /// <summary>Bearer token; null: read <see cref="TokenFile"/>, else generate one into the data dir.</summary>
    public string? Token { get; init; }

    /// <summary>File holding the bearer token.</summary>
    public string? TokenFile { get; init; }

    /// <summary>PEM certificate for HTTPS (with <see cref="TlsKey"/>).</summary>
    public string? TlsCert { get; init; }

    /// <summary>PEM private key for HTTPS.</summary>
    public string? TlsKey { get; init; }

    /// <summary>How long a mutating request waits for another operation on the same VM before 409 busy.</summary>
    public TimeSpan LockWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest request body accepted.</summary>
    public long MaxRequestBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Allow <c>nat = true</c> networks in the host's own network namespace (off: refused).</summary>
    public bool AllowHostNat { get; init; }

    /// <summary>On SIGTERM/SIGINT, shut the autostart VMs down in reverse order before exiting (host shutdown).</summary>
    public bool StopVmsOnExit { get; init; }
    /// <summary>Where the cgroup hierarchy is mounted (v2 unified, or v1 with one directory per controller).</summary>
    public string CgroupRoot { get; init; } = "/sys/fs/cgroup";

    /// <summary>Cgroup (relative to <see cref="CgroupRoot"/>) under which VMs with cpu.limit/weight/affinity get <c>vm-&lt;id&gt;</c>.</summary>
    public string CgroupParent { get; init; } = "kvm.slice";

    /// <summary>How often the auto-ballooning loop runs (memory.shares); zero or less: never.</summary>
    public TimeSpan AutoBalloonInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Where the auto-ballooning loop reads the host's memory use.</summary>
    public string MeminfoPath { get; init; } = "/proc/meminfo";

    /// <summary>Lowest level logged to the console.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Longest QMP socket path the kernel accepts (sun_path is 108 bytes including the NUL).</summary>
    public const int MaxSocketPath = 107;

    /// <summary>Usage text for <c>--help</c> and errors.</summary>
    public const string Usage = """
        Usage: kvm-agent [options]
          --listen ADDR:PORT     listen address (default 127.0.0.1:8680), or unix:/PATH for a unix socket
          --data-dir DIR         VM definitions, logs, token (default /var/lib/kvm-agent)
          --run-dir DIR          QMP sockets and pidfiles (default /run/kvm-agent)
          --accel auto|kvm|tcg   default accelerator (default auto)
          --token-file FILE      bearer token file (default: env KVM_AGENT_TOKEN, else <data-dir>/token)
          --tls-cert FILE        PEM certificate: serve HTTPS
          --tls-key FILE         PEM private key for --tls-cert
          --log-level LEVEL      Trace, Debug, Information, Warning, Error (default Information)
          --cgroup-root DIR      cgroup mount (default /sys/fs/cgroup)
          --cgroup-parent NAME   parent cgroup of per-VM cgroups (default kvm.slice)
          --allow-host-nat       allow nat = true networks in the host's own network namespace (default: refused)
          --stop-vms-on-exit     on SIGTERM/SIGINT shut the autostart VMs down in reverse order first (host shutdown)
        """;

    /// <summary>Parses the command line; throws <see cref="ArgumentException"/> with a message for people.</summary>
    public static AgentOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        var options = new AgentOptions { Token = NullIfEmpty(environment("KVM_AGENT_TOKEN")) };
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            options = name switch
            {
                "--listen" => options with { Listen = ParseEndpoint(Value()) },
                "--data-dir" => options with { DataDir = Value() },
                "--run-dir" => options with { RunDir = Value() },
                "--accel" => options with { Accel = Value() is var a && a is "auto" or "kvm" or "tcg" ? a : throw new ArgumentException($"--accel must be auto, kvm or tcg, not \"{a}\".") },
                "--token-file" => options with { TokenFile = Value() },
                "--tls-cert" => options with { TlsCert = Value() },
                "--tls-key" => options with { TlsKey = Value() },
                "--allow-host-nat" => options with { AllowHostNat = true },
                "--stop-vms-on-exit" => options with { StopVmsOnExit = true },
                "--cgroup-root" => options with { CgroupRoot = Value() },
                "--cgroup-parent" => options with { CgroupParent = Value() is var cg && System.Text.RegularExpressions.Regex.IsMatch(cg, "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$") && !cg.Split('/').Contains("..") ? cg : throw new ArgumentException($"--cgroup-parent \"{cg}\" must be a relative cgroup path.") },
                "--log-level" => options with { LogLevel = Enum.TryParse<LogLevel>(Value(), true, out var l) ? l : throw new ArgumentException($"unknown log level \"{args[i]}\".") },
                _ => throw new ArgumentException($"unknown option \"{name}\"."),
            };
        }
        return options.Checked();
    }

    /// <summary>Absolute paths and consistent TLS settings; throws <see cref="ArgumentException"/> otherwise.</summary>
    public AgentOptions Checked()
    {
        if ((TlsCert is null) != (TlsKey is null))
            throw new ArgumentException("--tls-cert and --tls-key go together.");
        var runDir = Path.GetFullPath(RunDir);
        // The longest VM id has 9 digits: <run-dir>/<id>/qmp.sock must fit in sun_path.
        if (Path.Combine(runDir, "999999999", "qmp.sock").Length > MaxSocketPath)
            throw new ArgumentException($"--run-dir \"{runDir}\" is too long for QMP socket paths (at most {MaxSocketPath - "/999999999/qmp.sock".Length} characters).");
        return this with { DataDir = Path.GetFullPath(DataDir), RunDir = runDir, TokenFile = TokenFile is null ? null : Path.GetFullPath(TokenFile) };
    }

    /// <summary>Parses <c>ADDR:PORT</c>, <c>[v6]:PORT</c> or <c>unix:/absolute/path.sock</c>.</summary>
    public static EndPoint ParseEndpoint(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = text["unix:".Length..];
            if (path.StartsWith("//", StringComparison.Ordinal))
                path = path[2..];
            if (!Path.IsPathFullyQualified(path) || path.EndsWith('/'))
                throw new ArgumentException($"--listen \"{text}\": a unix socket needs an absolute file path (unix:/run/kvm-agent/agent.sock).");
            if (System.Text.Encoding.UTF8.GetByteCount(path) > MaxSocketPath)
                throw new ArgumentException($"--listen \"{text}\": a socket path has at most {MaxSocketPath} bytes.");
            return new System.Net.Sockets.UnixDomainSocketEndPoint(path);
        }
        if (IPEndPoint.TryParse(text, out var endpoint) && text.Contains(':', StringComparison.Ordinal) && endpoint.Port is >= 0 and <= 65535)
            return endpoint;
        var colon = text.LastIndexOf(':');
        if (colon > 0 && text[..colon] == "localhost" && int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port))
            return new IPEndPoint(IPAddress.Loopback, port);
        throw new ArgumentException($"--listen \"{text}\" is not ADDR:PORT.");
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}
