using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Health;

namespace Kvm.Bench;

/// <summary>
/// `kvm-bench plugin-start`: exec a plugin the way its host does (terraform: go-plugin environment with
/// and without AutoMTLS; pulumi: the engine's argv) and time exec → handshake line on stdout, the
/// plugin's CPU time (utime+stime of every thread, /proc/PID/stat) at that moment, and exec → first
/// RPC answered (terraform: grpc.health Check over the handshake's transport, as go-plugin does
/// first; pulumi: GetPluginInfo). Median and range of N starts per variant; variants rotate per round.
/// </summary>
public static class PluginStart
{
    public const string Usage = "usage: kvm-bench plugin-start --terraform PATH --pulumi PATH [--starts N] [--out FILE] [--label TEXT] [--env NAME=VALUE]... [--only TEXT] [--baseline DIR]";

    /// <summary>Extra environment for every plugin started (--env NAME=VALUE), to try runtime knobs.</summary>
    private static readonly Dictionary<string, string> s_environment = [];

    private static string? s_only;

    /// <summary>A directory with an earlier build (Kvm.Terraform/, Kvm.Pulumi/): its starts are interleaved with this build's.</summary>
    private static string? s_baseline;

    private sealed record Variant(string Name, string Binary, bool Terraform, bool Mtls, bool Floor = false);

    /// <summary>
    /// `kvm-bench plugin-floor`: the .NET floor, measured like a plugin. It prints a handshake-shaped line
    /// and waits for SIGTERM, with no other work: what any ReadyToRun .NET console costs to get there.
    /// </summary>
    public static int Floor()
    {
        using var stdout = Console.OpenStandardOutput();
        stdout.Write("1|6|unix|/nonexistent|grpc|\n"u8);
        stdout.Flush();
        using var done = new ManualResetEventSlim();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; done.Set(); });
        done.Wait();
        return 0;
    }

    private sealed record Sample(double HandshakeMs, double CpuAtHandshakeMs, double FirstCallMs, double CpuAtFirstCallMs);

    public static async Task<int> RunAsync(string[] args)
    {
        string? terraform = null, pulumi = null, output = null, label = null;
        var starts = 20;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--terraform": terraform = Next(); break;
                case "--pulumi": pulumi = Next(); break;
                case "--starts": starts = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": output = Next(); break;
                case "--label": label = Next(); break;
                case "--env":
                    var pair = Next();
                    var eq = pair.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                        throw new ArgumentException($"--env needs NAME=VALUE, not {pair}");
                    s_environment[pair[..eq]] = pair[(eq + 1)..];
                    break;
                case "--baseline":
                    s_baseline = Next();
                    break;
                case "--only":
                    s_only = Next();
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}\n{Usage}");
            }
        }
        var variants = new List<Variant>();
        if (terraform is not null)
        {
            variants.Add(new Variant("terraform-provider-kvm, AutoMTLS", terraform, true, true));
            variants.Add(new Variant("terraform-provider-kvm, plaintext", terraform, true, false));
        }
        if (pulumi is not null)
            variants.Add(new Variant("pulumi-resource-kvm", pulumi, false, false));
        if (s_baseline is not null)
        {
            var tf = Path.Combine(s_baseline, "Kvm.Terraform", "terraform-provider-kvm");
            var pu = Path.Combine(s_baseline, "Kvm.Pulumi", "pulumi-resource-kvm");
            variants.Add(new Variant("baseline terraform-provider-kvm, AutoMTLS", tf, true, true));
            variants.Add(new Variant("baseline terraform-provider-kvm, plaintext", tf, true, false));
            variants.Add(new Variant("baseline pulumi-resource-kvm", pu, false, false));
        }
        // The same run's floor: this binary started in its plugin-floor mode.
        variants.Add(new Variant(".NET floor (kvm-bench plugin-floor)", Environment.ProcessPath!, false, false, Floor: true));
        if (s_only is not null)
            variants.RemoveAll(v => !v.Name.Contains(s_only, StringComparison.OrdinalIgnoreCase));
        if (variants.Count == 0)
            throw new ArgumentException(Usage);

        using var clientCertificate = CreateClientCertificate();
        var samples = variants.ToDictionary(v => v, _ => new List<Sample>());
        // One untimed start per variant: the page cache and the bench's own client code warm up.
        foreach (var variant in variants)
            await StartOnceAsync(variant, clientCertificate);
        for (var round = 0; round < starts; round++)
        {
            for (var k = 0; k < variants.Count; k++)
            {
                var variant = variants[(round + k) % variants.Count];
                samples[variant].Add(await StartOnceAsync(variant, clientCertificate));
            }
        }

        var text = Markdown(samples, starts, label);
        Console.Write(text);
        if (output is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
            await File.WriteAllTextAsync(output, text);
            Console.WriteLine($"kvm-bench: wrote {output}");
        }
        return 0;
    }

    private static async Task<Sample> StartOnceAsync(Variant variant, X509Certificate2 clientCertificate)
    {
        var start = new ProcessStartInfo(variant.Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in s_environment)
            start.Environment[name] = value;
        if (variant.Floor)
            start.ArgumentList.Add("plugin-floor");
        if (variant.Terraform)
        {
            start.Environment["TF_PLUGIN_MAGIC_COOKIE"] = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
            start.Environment["PLUGIN_PROTOCOL_VERSIONS"] = "5,6";
            if (variant.Mtls)
                start.Environment["PLUGIN_CLIENT_CERT"] = clientCertificate.ExportCertificatePem();
            else
                start.Environment.Remove("PLUGIN_CLIENT_CERT");
        }
        else if (!variant.Floor)
        {
            // The engine passes its own address; the plugin dials it lazily (never before the first RPC that needs it).
            start.ArgumentList.Add("127.0.0.1:1");
        }
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {variant.Binary}");
        try
        {
            process.ErrorDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))
                ?? throw new InvalidOperationException($"{variant.Binary} closed stdout without a handshake");
            var handshake = clock.Elapsed.TotalMilliseconds;
            var cpuAtHandshake = CpuMilliseconds(process.Id);
            if (variant.Floor)
                return new Sample(handshake, cpuAtHandshake, double.NaN, double.NaN);
            await FirstCallAsync(variant, line, clientCertificate);
            var firstCall = clock.Elapsed.TotalMilliseconds;
            var cpuAtFirstCall = CpuMilliseconds(process.Id);
            return new Sample(handshake, cpuAtHandshake, firstCall, cpuAtFirstCall);
        }
        finally
        {
            if (!process.HasExited)
            {
                // SIGTERM: both plugins treat it as Shutdown.
                Native.Signal(process.Id, Native.SIGTERM);
                if (!process.WaitForExit(5000))
                    process.Kill();
            }
            process.WaitForExit();
        }
    }

    private static async Task FirstCallAsync(Variant variant, string line, X509Certificate2 clientCertificate)
    {
        if (!variant.Terraform)
        {
            using var pulumi = GrpcClient.CreateInsecure("127.0.0.1:" + line.Trim());
            var info = await pulumi.UnaryAsync<Empty, Kvm.Protocol.Pulumirpc.PluginInfo>("/pulumirpc.ResourceProvider/GetPluginInfo", new Empty(), Kvm.Protocol.Pulumirpc.PluginInfo.Parser);
            if (info.Version.Length == 0)
                throw new InvalidOperationException("GetPluginInfo returned no version");
            return;
        }
        // 1|6|unix|/path|grpc|cert
        var fields = line.Trim().Split('|');
        EndPoint endPoint = fields[2] == "unix"
            ? new UnixDomainSocketEndPoint(fields[3])
            : IPEndPoint.Parse(fields[3]);
        var serverCertificate = fields[5].Length == 0 ? null : Convert.FromBase64String(Pad(fields[5]));
        var handler = new SocketsHttpHandler { UseProxy = false };
        handler.ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, endPoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp);
            await socket.ConnectAsync(endPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        };
        if (serverCertificate is not null)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetRawCertData().AsSpan().SequenceEqual(serverCertificate),
                ClientCertificates = [clientCertificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate,
            };
        }
        var baseUri = new Uri(serverCertificate is null ? "http://localhost" : "https://localhost");
        using var client = new GrpcClient(new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) }, baseUri);
        var health = await client.UnaryAsync<HealthCheckRequest, HealthCheckResponse>(
            "/grpc.health.v1.Health/Check", new HealthCheckRequest { Service = "plugin" }, HealthCheckResponse.Parser);
        if (health.Status != HealthCheckResponse.Types.ServingStatus.Serving)
            throw new InvalidOperationException($"health check said {health.Status}");
    }

    private static string Pad(string base64) => base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');

    /// <summary>utime + stime of the whole process (live and exited threads), from /proc/PID/stat, in ms.</summary>
    private static double CpuMilliseconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // Fields 14 and 15 of stat(5); after the comm field, index 11 and 12.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        // USER_HZ is 100 on every Linux the plugins run on.
        return ticks * 10.0;
    }

    private static X509Certificate2 CreateClientCertificate()
    {
        // Like go-plugin's host: a throw-away self-signed P-256 certificate.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2"), new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-1), now.AddHours(1));
    }

    private static string Markdown(Dictionary<Variant, List<Sample>> samples, int starts, string? label)
    {
        var sb = new StringBuilder();
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        sb.Append(CultureInfo.InvariantCulture, $"## Plugin start-up{(label is null ? "" : " — " + label)}\n\n");
        if (s_environment.Count > 0)
            sb.Append(CultureInfo.InvariantCulture, $"Extra environment: {string.Join(", ", s_environment.Select(e => $"`{e.Key}={e.Value}`"))}.\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"{starts} starts per variant (one untimed start first), variants rotated per round; load average at the end: {load}; {Environment.ProcessorCount} CPUs.\n\n");
        sb.Append("| Plugin | exec → handshake, median (min–max) | CPU at handshake, median | exec → first RPC answered, median (min–max) | CPU at first RPC, median |\n");
        sb.Append("|---|---|---|---|---|\n");
        foreach (var (variant, list) in samples)
        {
            static string F(double v) => double.IsNaN(v) ? "—" : v.ToString("0", CultureInfo.InvariantCulture);
            var handshake = list.Select(s => s.HandshakeMs).ToList();
            var first = list.Select(s => s.FirstCallMs).ToList();
            sb.Append(CultureInfo.InvariantCulture,
                $"| {variant.Name} | **{F(Median(handshake))} ms** ({F(handshake.Min())}–{F(handshake.Max())}) | {F(Median(list.Select(s => s.CpuAtHandshakeMs).ToList()))} ms | {F(Median(first))} ms ({F(first.Min())}–{F(first.Max())}) | {F(Median(list.Select(s => s.CpuAtFirstCallMs).ToList()))} ms |\n");
        }
        sb.Append("\nCPU is utime+stime from /proc/PID/stat (10 ms ticks): read it as ±10 ms per sample.\n");
        return sb.ToString();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
