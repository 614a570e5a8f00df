using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Kvm.Bench;
using Kvm.Client;
using Kvm.Model;

// kvm-bench: create+start through kvm-agent against raw.sh in the same run, plus the agent's own figures
// (cold start, idle RSS, GET latency, adoption). Every process it starts is registered in WORK/pids and
// killed by PID at the end, also on failure or SIGINT/SIGTERM. See bench/README.md.
if (args.Length > 0 && args[0] == "plugin-floor")
    return PluginStart.Floor();
if (args.Length > 0 && args[0] == "plugin-start")
{
    try
    {
        return await PluginStart.RunAsync(args[1..]);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"kvm-bench: {e.Message}");
        return 2;
    }
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"kvm-bench: {e.Message}\n{BenchOptions.Usage}");
    return 2;
}

using var cancel = new CancellationTokenSource();
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cancel.Cancel(); });
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cancel.Cancel(); });

Directory.CreateDirectory(options.WorkDir);
var pids = new PidRegistry(options.WorkDir);
var bench = new Bench(options, pids);
try
{
    var result = await bench.RunAsync(cancel.Token);
    var markdown = Report.Markdown(options, result);
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.Out))!);
    await File.WriteAllTextAsync(options.Out, markdown, CancellationToken.None);
    Console.WriteLine(Report.Summary(result));
    Console.WriteLine($"kvm-bench: wrote {options.Out}");
    return 0;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    Console.Error.WriteLine("kvm-bench: interrupted; cleaning up");
    return 130;
}
catch (Exception e)
{
    Console.Error.WriteLine($"kvm-bench: failed: {e}");
    return 1;
}
finally
{
    await bench.CleanupAsync();
    var killed = await pids.KillLeftoversAsync();
    if (killed > 0)
        Console.Error.WriteLine($"kvm-bench: killed {killed} leftover process(es) it had started");
}

namespace Kvm.Bench
{
    public sealed record BenchOptions
    {
        public required string Agent { get; init; }
        public required string RawScript { get; init; }
        public required string WorkDir { get; init; }
        public required string Out { get; init; }
        public int Vms { get; init; } = 10;
        public int Rounds { get; init; } = 3;
        public int ColdStarts { get; init; } = 5;
        public int Adoptions { get; init; } = 3;
        public int Gets { get; init; } = 1000;
        public string Commit { get; init; } = "unknown";

        public const string Usage = """
            Usage: kvm-bench --agent PATH/kvm-agent --raw PATH/raw.sh --work DIR --out FILE.md
                             [--vms 10] [--rounds 3] [--cold-starts 5] [--adoptions 3] [--gets 1000] [--commit SHA]
            """;

        public static BenchOptions Parse(string[] args)
        {
            string? agent = null, raw = null, work = null, output = null;
            var o = new BenchOptions { Agent = "", RawScript = "", WorkDir = "", Out = "" };
            for (var i = 0; i < args.Length; i++)
            {
                var name = args[i];
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
                int Int() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new ArgumentException($"{name} needs a positive integer");
                switch (name)
                {
                    case "--agent": agent = Value(); break;
                    case "--raw": raw = Value(); break;
                    case "--work": work = Value(); break;
                    case "--out": output = Value(); break;
                    case "--vms": o = o with { Vms = Int() }; break;
                    case "--rounds": o = o with { Rounds = Int() }; break;
                    case "--cold-starts": o = o with { ColdStarts = Int() }; break;
                    case "--adoptions": o = o with { Adoptions = Int() }; break;
                    case "--gets": o = o with { Gets = Int() }; break;
                    case "--commit": o = o with { Commit = Value() }; break;
                    default: throw new ArgumentException($"unknown option {name}");
                }
            }
            if (agent is null || raw is null || work is null || output is null)
                throw new ArgumentException("--agent, --raw, --work and --out are required");
            return o with { Agent = Path.GetFullPath(agent), RawScript = Path.GetFullPath(raw), WorkDir = Path.GetFullPath(work), Out = output };
        }
    }

    /// <summary>Everything one run measured.</summary>
    public sealed class BenchResult
    {
        public string StartedAt { get; set; } = "";
        public string LoadBefore { get; set; } = "";
        public string LoadAfter { get; set; } = "";
        public List<(string Phase, string Load)> Loads { get; } = [];
        public string QemuVersion { get; set; } = "";
        public string Kernel { get; set; } = "";
        public string Cpu { get; set; } = "";
        public int Cores { get; set; }
        public double TotalSeconds { get; set; }

        public List<double> ColdStartMs { get; } = [];
        public List<long> IdleRssKib { get; } = [];

        /// <summary>Side → per-VM create+start wall ms (warm-up excluded).</summary>
        public Dictionary<string, List<double>> CreateStart { get; } = new(StringComparer.Ordinal);
        /// <summary>Side → per-VM sub-steps (raw: qemu-img and launch→running; agent: the agent's own "running after" log).</summary>
        public Dictionary<string, List<double>> SubStep { get; } = new(StringComparer.Ordinal);
        public List<double> RawQemuImgMs { get; } = [];
        public Dictionary<string, double> ColdFirstCreate { get; } = new(StringComparer.Ordinal);
        public List<double> AgentDeleteMs { get; } = [];
        public List<(int Round, string Side, double P50)> RoundP50 { get; } = [];
        public string AgentArgv { get; set; } = "";
        public long RssWithRunningKib { get; set; }

        public List<double> AdoptionMs { get; } = [];
        public List<double> AdoptionLogMs { get; } = [];
        public int AdoptedVms { get; set; }

        public Dictionary<int, (Stats List, Stats One, int Bytes)> Gets { get; } = [];
        public long RssWith100DefinedKib { get; set; }
    }

    public sealed partial class Bench(BenchOptions options, PidRegistry pids)
    {
        public const string Raw = "raw (minimal argv)";
        public const string RawAgentArgv = "raw (agent's argv)";
        public const string Agent = "kvm-agent POST /v1/vms";
        private const string Token = "bench-token-not-secret";
        private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
        private readonly List<AgentProcess> _agents = [];
        private readonly HttpClient _probe = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(1), PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(5) };
        private int _agentCount;

        [GeneratedRegex(@"started: QEMU pid (\d+), \w+, running after (\d+) ms")]
        private static partial Regex StartedLine();

        [GeneratedRegex(@"adopted (\d+) running VMs in (\d+) ms")]
        private static partial Regex LoadedLine();

        public async Task<BenchResult> RunAsync(CancellationToken ct)
        {
            var r = new BenchResult
            {
                StartedAt = DateTimeOffset.Now.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture),
                LoadBefore = Native.LoadAverage(),
                Cores = Environment.ProcessorCount,
                QemuVersion = await FirstLineAsync("qemu-system-x86_64", "--version"),
                Kernel = await FirstLineAsync("uname", "-r"),
                Cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "",
            };
            var total = Stopwatch.StartNew();
            Phase(r, "start");

            await ColdStartAsync(r, ct);
            Phase(r, "after cold starts");

            // One agent serves the create/start rounds, the adoption restarts and the GET measurements.
            var dirs = NewAgentDirs();
            var agent = await StartAgentAsync(dirs, ct);
            using var client = KvmClient.Create(agent.BaseAddress, Token, timeout: TimeSpan.FromSeconds(60));
            await client.ListVmsAsync(ct); // JIT the client's request path before anything is timed

            await WarmUpAsync(r, agent, client, ct);
            var running = await CreateStartRoundsAsync(r, agent, client, ct);
            Phase(r, "after create/start rounds");

            r.RssWithRunningKib = Native.RssKib(agent.Pid);
            agent = await AdoptionAsync(r, agent, dirs, running, ct);
            Phase(r, "after adoption");

            using var client2 = KvmClient.Create(agent.BaseAddress, Token, timeout: TimeSpan.FromSeconds(60));
            foreach (var vm in running)
            {
                var clock = Stopwatch.StartNew();
                await client2.DeleteVmAsync(vm, RunningVmDeletion.Force, cancellationToken: ct);
                r.AgentDeleteMs.Add(clock.Elapsed.TotalMilliseconds);
            }
            await GetLatencyAsync(r, agent, client2, ct);
            Phase(r, "after GET latency");
            await StopAgentAsync(agent);

            r.LoadAfter = Native.LoadAverage();
            r.TotalSeconds = total.Elapsed.TotalSeconds;
            return r;
        }

        private static void Phase(BenchResult r, string phase) => r.Loads.Add((phase, Native.LoadAverage()));

        private (string Data, string Run) NewAgentDirs()
        {
            var n = Interlocked.Increment(ref _agentCount);
            return (Path.Combine(options.WorkDir, $"a{n}", "data"), Path.Combine(options.WorkDir, $"a{n}", "run"));
        }

        private async Task<AgentProcess> StartAgentAsync((string Data, string Run) dirs, CancellationToken ct)
        {
            var agent = AgentProcess.Start(options.Agent, dirs.Data, dirs.Run, AgentProcess.FreeLoopbackPort(), Token,
                Path.Combine(options.WorkDir, "agent.log"), pids);
            _agents.Add(agent);
            await agent.WaitHealthyAsync(_probe, StartTimeout, ct);
            return agent;
        }

        private async Task StopAgentAsync(AgentProcess agent)
        {
            await agent.StopAsync(TimeSpan.FromSeconds(10));
            _agents.Remove(agent);
        }

        /// <summary>Exec → first /healthz 200 with an empty data dir; RSS after a second of idling. The first run warms the bench's own HTTP code and is not counted.</summary>
        private async Task ColdStartAsync(BenchResult r, CancellationToken ct)
        {
            for (var i = 0; i <= options.ColdStarts; i++)
            {
                var dirs = NewAgentDirs();
                var agent = AgentProcess.Start(options.Agent, dirs.Data, dirs.Run, AgentProcess.FreeLoopbackPort(), Token,
                    Path.Combine(options.WorkDir, "agent.log"), pids);
                _agents.Add(agent);
                var ms = await agent.WaitHealthyAsync(_probe, StartTimeout, ct);
                await Task.Delay(1000, ct);
                var rss = Native.RssKib(agent.Pid);
                await StopAgentAsync(agent);
                if (i == 0)
                    continue;
                r.ColdStartMs.Add(ms);
                r.IdleRssKib.Add(rss);
            }
        }

        private static VmSpec Spec(string name, string powerState = "running") => new()
        {
            Name = name,
            Kvm = false,
            Memory = new MemorySpec { SizeMib = 64 },
            Disks = new Dictionary<string, DiskSpec> { ["virtio0"] = new DiskSpec { SizeGib = 1 } },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            PowerState = powerState,
        };

        /// <summary>One untimed VM per side first: the agent's first create JITs its whole create path; its time is reported as "cold".</summary>
        private async Task WarmUpAsync(BenchResult r, AgentProcess agent, KvmClient client, CancellationToken ct)
        {
            var clock = Stopwatch.StartNew();
            var vm = (await client.CreateVmAsync(Spec("bench-warmup"), cancellationToken: ct)).Value;
            r.ColdFirstCreate[Agent] = clock.Elapsed.TotalMilliseconds;
            if (vm.Pid is { } pid)
            {
                pids.Add((int)pid, "qemu (agent)");
                r.AgentArgv = Native.CommandLine((int)pid);
            }
            await client.DeleteVmAsync(vm.VmId!.Value, RunningVmDeletion.Force, cancellationToken: ct);
            foreach (var variant in new[] { ("minimal", Raw), ("agent", RawAgentArgv) })
            {
                var samples = await RawScript.RunAsync(options.RawScript, 1, variant.Item1, Path.Combine(options.WorkDir, "raw-warmup"), pids, StartTimeout, ct);
                r.ColdFirstCreate[variant.Item2] = samples[0].TotalMs;
            }
        }

        /// <summary>
        /// Rounds of N sequential create+starts per side; the side order rotates each round so drift in the host's load
        /// spreads over all sides. Each side ends its round by removing its VMs, except the agent's last round, whose
        /// VMs stay for the adoption measurement (their IDs are returned).
        /// </summary>
        private async Task<List<long>> CreateStartRoundsAsync(BenchResult r, AgentProcess agent, KvmClient client, CancellationToken ct)
        {
            string[] sides = [Raw, RawAgentArgv, Agent];
            foreach (var side in sides)
            {
                r.CreateStart[side] = [];
                r.SubStep[side] = [];
            }
            var keep = new List<long>();
            for (var round = 1; round <= options.Rounds; round++)
            {
                var order = sides.Skip((round - 1) % sides.Length).Concat(sides.Take((round - 1) % sides.Length)).ToList();
                foreach (var side in order)
                {
                    ct.ThrowIfCancellationRequested();
                    List<double> times;
                    if (side == Agent)
                    {
                        var last = round == options.Rounds;
                        (times, var ids) = await AgentRoundAsync(r, agent, client, round, deleteAfter: !last, ct);
                        if (last)
                            keep.AddRange(ids);
                    }
                    else
                    {
                        var samples = await RawScript.RunAsync(options.RawScript, options.Vms, side == Raw ? "minimal" : "agent",
                            Path.Combine(options.WorkDir, $"raw-r{round}"), pids, TimeSpan.FromSeconds(30 + 15 * options.Vms), ct);
                        times = [.. samples.Select(s => s.TotalMs)];
                        r.SubStep[side].AddRange(samples.Select(s => s.LaunchMs));
                        r.RawQemuImgMs.AddRange(samples.Select(s => s.QemuImgMs));
                    }
                    r.CreateStart[side].AddRange(times);
                    r.RoundP50.Add((round, side, new Stats(times).P50));
                }
            }
            return keep;
        }

        private async Task<(List<double> Times, List<long> Ids)> AgentRoundAsync(BenchResult r, AgentProcess agent, KvmClient client, int round, bool deleteAfter, CancellationToken ct)
        {
            var times = new List<double>();
            var created = new List<(long Id, long Pid)>();
            try
            {
                for (var i = 0; i < options.Vms; i++)
                {
                    var clock = Stopwatch.StartNew();
                    var vm = (await client.CreateVmAsync(Spec($"bench-r{round}-{i}"), cancellationToken: ct)).Value;
                    times.Add(clock.Elapsed.TotalMilliseconds);
                    if (vm.Pid is { } pid)
                        pids.Add((int)pid, "qemu (agent)");
                    created.Add((vm.VmId!.Value, vm.Pid ?? 0));
                    if (vm.Status != "running")
                        throw new InvalidOperationException($"VM {vm.VmId} was created with status {vm.Status}, not running");
                }
                // The agent logs "running after N ms" for each start; the console logger is asynchronous, so give it a moment.
                await Task.Delay(300, ct);
                var started = agent.Lines.Select(l => StartedLine().Match(l)).Where(m => m.Success)
                    .GroupBy(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))
                    .ToDictionary(g => g.Key, g => double.Parse(g.Last().Groups[2].Value, CultureInfo.InvariantCulture));
                r.SubStep[Agent].AddRange(created.Where(c => started.ContainsKey(c.Pid)).Select(c => started[c.Pid]));
            }
            finally
            {
                if (deleteAfter || ct.IsCancellationRequested)
                {
                    foreach (var (id, _) in created)
                    {
                        var clock = Stopwatch.StartNew();
                        await client.DeleteVmAsync(id, RunningVmDeletion.Force, cancellationToken: CancellationToken.None);
                        r.AgentDeleteMs.Add(clock.Elapsed.TotalMilliseconds);
                    }
                }
            }
            return (times, [.. created.Select(c => c.Id)]);
        }

        /// <summary>SIGTERM the agent with the VMs running, exec a new one on the same dirs, time until GET /v1/vms lists them all running.</summary>
        private async Task<AgentProcess> AdoptionAsync(BenchResult r, AgentProcess agent, (string Data, string Run) dirs, List<long> running, CancellationToken ct)
        {
            r.AdoptedVms = running.Count;
            for (var i = 0; i < options.Adoptions; i++)
            {
                await StopAgentAsync(agent);
                agent = AgentProcess.Start(options.Agent, dirs.Data, dirs.Run, AgentProcess.FreeLoopbackPort(), Token, Path.Combine(options.WorkDir, "agent.log"), pids);
                _agents.Add(agent);
                using var client = KvmClient.Create(agent.BaseAddress, Token, timeout: TimeSpan.FromSeconds(5));
                double? ms = null;
                while (agent.SinceExec.Elapsed < StartTimeout)
                {
                    ct.ThrowIfCancellationRequested();
                    try
                    {
                        var vms = await client.ListVmsAsync(ct);
                        if (vms.Count(v => running.Contains(v.VmId ?? 0) && v.Status == "running") == running.Count)
                        {
                            ms = agent.SinceExec.Elapsed.TotalMilliseconds;
                            break;
                        }
                    }
                    catch (HttpRequestException) { }
                    await Task.Delay(1, ct);
                }
                if (ms is null)
                    throw new TimeoutException($"the restarted agent did not report {running.Count} running VMs within {StartTimeout.TotalSeconds} s");
                r.AdoptionMs.Add(ms.Value);
                await Task.Delay(300, ct);
                if (agent.Lines.Select(l => LoadedLine().Match(l)).LastOrDefault(m => m.Success) is { } loaded)
                    r.AdoptionLogMs.Add(double.Parse(loaded.Groups[2].Value, CultureInfo.InvariantCulture));
            }
            return agent;
        }

        /// <summary>GET /v1/vms and GET /v1/vms/{id} latency (bytes read, no deserialization) with 10 and then 100 defined, stopped VMs.</summary>
        private async Task GetLatencyAsync(BenchResult r, AgentProcess agent, KvmClient client, CancellationToken ct)
        {
            var defined = new List<long>();
            try
            {
                foreach (var target in new[] { 10, 100 })
                {
                    while (defined.Count < target)
                        defined.Add((await client.CreateVmAsync(Spec($"bench-idle-{defined.Count}", "stopped"), cancellationToken: ct)).Value.VmId!.Value);
                    using var http = new HttpClient { BaseAddress = agent.BaseAddress };
                    http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
                    var list = await TimeGetsAsync(http, "v1/vms", ct);
                    var one = await TimeGetsAsync(http, $"v1/vms/{defined[^1].ToString(CultureInfo.InvariantCulture)}", ct);
                    var bytes = (await http.GetByteArrayAsync(new Uri("v1/vms", UriKind.Relative), ct)).Length;
                    r.Gets[target] = (list, one, bytes);
                }
                await Task.Delay(1000, ct);
                r.RssWith100DefinedKib = Native.RssKib(agent.Pid);
            }
            finally
            {
                foreach (var id in defined)
                    await client.DeleteVmAsync(id, cancellationToken: CancellationToken.None);
            }
        }

        private async Task<Stats> TimeGetsAsync(HttpClient http, string path, CancellationToken ct)
        {
            var uri = new Uri(path, UriKind.Relative);
            for (var i = 0; i < 100; i++)
                (await http.GetAsync(uri, ct)).Dispose();
            var times = new List<double>(options.Gets);
            for (var i = 0; i < options.Gets; i++)
            {
                var clock = Stopwatch.StartNew();
                using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseContentRead, ct);
                response.EnsureSuccessStatusCode();
                times.Add(clock.Elapsed.TotalMilliseconds);
            }
            return new Stats(times);
        }

        /// <summary>Stops every agent still running. VMs of an interrupted run are killed by PID afterwards (the registry).</summary>
        public async Task CleanupAsync()
        {
            foreach (var agent in _agents.ToList())
            {
                try { await StopAgentAsync(agent); }
                catch (InvalidOperationException) { }
            }
            _probe.Dispose();
        }

        private static async Task<string> FirstLineAsync(string file, string arg)
        {
            try
            {
                using var p = Process.Start(new ProcessStartInfo(file, arg) { RedirectStandardOutput = true, UseShellExecute = false })!;
                var text = await p.StandardOutput.ReadToEndAsync();
                await p.WaitForExitAsync();
                return text.Split('\n')[0].Trim();
            }
            catch (System.ComponentModel.Win32Exception) { return "n/a"; }
        }
    }
}
