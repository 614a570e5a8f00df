using System.Globalization;
using System.Text;

namespace Kvm.Bench;

/// <summary>The results file (markdown) and the console summary.</summary>
public static class Report
{
    /// <summary>DESIGN §5: POST /v1/vms + start p50 within raw + 30 ms.</summary>
    public const double GoalOverheadMs = 30;

    private static string F(double v, int d = 1) => Stats.Ms(v, d);
    private static string Mib(long kib) => kib < 0 ? "n/a" : (kib / 1024.0).ToString("F1", CultureInfo.InvariantCulture);

    public static string Summary(BenchResult r)
    {
        var s = new StringBuilder();
        var raw = new Stats(r.CreateStart[Bench.Raw]);
        var rawArgv = new Stats(r.CreateStart[Bench.RawAgentArgv]);
        var agent = new Stats(r.CreateStart[Bench.Agent]);
        s.AppendLine(CultureInfo.InvariantCulture, $"create+start per VM ({agent.Count} samples per side; ms)   p50      p95");
        foreach (var (name, st) in new[] { (Bench.Raw, raw), (Bench.RawAgentArgv, rawArgv), (Bench.Agent, agent) })
            s.AppendLine(CultureInfo.InvariantCulture, $"  {name,-32} {F(st.P50),8} {F(st.P95),8}");
        s.AppendLine(CultureInfo.InvariantCulture, $"  agent / raw p50 ratio: {F(agent.P50 / raw.P50, 2)}x; agent - raw p50: {F(agent.P50 - raw.P50)} ms (goal <= {GoalOverheadMs} ms: {(agent.P50 - raw.P50 <= GoalOverheadMs ? "met" : "NOT met")})");
        s.AppendLine(CultureInfo.InvariantCulture, $"  agent - raw(agent argv) p50: {F(agent.P50 - rawArgv.P50)} ms (the agent's own software overhead)");
        var cold = new Stats(r.ColdStartMs);
        s.AppendLine(CultureInfo.InvariantCulture, $"agent cold start to /healthz 200: p50 {F(cold.P50)} ms (min {F(cold.Min)}, max {F(cold.Max)}); idle RSS {Mib((long)new Stats(r.IdleRssKib.Select(k => (double)k)).P50)} MiB");
        foreach (var (n, g) in r.Gets.OrderBy(g => g.Key))
            s.AppendLine(CultureInfo.InvariantCulture, $"GET /v1/vms with {n} VMs: p50 {F(g.List.P50, 2)} ms, p99 {F(g.List.P99, 2)} ms ({g.Bytes} bytes); GET /v1/vms/{{id}}: p50 {F(g.One.P50, 2)} ms, p99 {F(g.One.P99, 2)} ms");
        var adopt = new Stats(r.AdoptionMs);
        s.AppendLine(CultureInfo.InvariantCulture, $"adoption of {r.AdoptedVms} running VMs, exec to all reported running: p50 {F(adopt.P50)} ms (agent's own load+adopt: {F(new Stats(r.AdoptionLogMs).P50, 0)} ms)");
        s.AppendLine(CultureInfo.InvariantCulture, $"load average: before {r.LoadBefore}, after {r.LoadAfter} ({r.Cores} cores)");
        return s.ToString();
    }

    public static string Markdown(BenchOptions o, BenchResult r)
    {
        var s = new StringBuilder();
        void L(string line = "") => s.AppendLine(line);
        var raw = new Stats(r.CreateStart[Bench.Raw]);
        var rawArgv = new Stats(r.CreateStart[Bench.RawAgentArgv]);
        var agent = new Stats(r.CreateStart[Bench.Agent]);

        L($"# Bench results, {r.StartedAt}");
        L();
        L($"Commit `{o.Commit}`; {r.Cores} × {r.Cpu}; kernel {r.Kernel}; {r.QemuVersion}; .NET {Environment.Version}.");
        L($"{o.Rounds} rounds × {o.Vms} VMs per side, sides rotated each round; {r.TotalSeconds:F0} s in total.");
        L($"Load average (1/5/15 min): {string.Join("; ", r.Loads.Select(l => $"{l.Phase}: {l.Load}"))}; end: {r.LoadAfter}.");
        L();
        L("## Create + start one VM (1 GiB qcow2, q35, TCG, 64 MiB, no display), sequential");
        L();
        L("Percentiles are linear interpolations between closest ranks. \"Sub-step\": raw = QEMU exec → QMP `running`; agent = the agent's own \"running after N ms\" log (its StartAsync).");
        L();
        L("| Side | n | p50 ms | p95 ms | min | max | sub-step p50 ms | cold first VM ms |");
        L("|---|---|---|---|---|---|---|---|");
        foreach (var (name, st) in new[] { (Bench.Raw, raw), (Bench.RawAgentArgv, rawArgv), (Bench.Agent, agent) })
            L($"| {name} | {st.Count} | **{F(st.P50)}** | {F(st.P95)} | {F(st.Min)} | {F(st.Max)} | {F(new Stats(r.SubStep[name]).P50)} | {F(r.ColdFirstCreate.GetValueOrDefault(name, double.NaN))} |");
        L();
        var diff = agent.P50 - raw.P50;
        L($"- **agent / raw p50 = {F(agent.P50 / raw.P50, 2)}×; agent − raw p50 = {F(diff)} ms** against the DESIGN §5 goal of ≤ {GoalOverheadMs} ms: **{(diff <= GoalOverheadMs ? "met" : "not met")}** ({F(diff - GoalOverheadMs)} ms {(diff <= GoalOverheadMs ? "to spare" : "over")}).");
        L($"- p95: agent / raw = {F(agent.P95 / raw.P95, 2)}× (research goal P1: ≤ 2×).");
        L($"- agent − raw-with-the-agent's-argv p50 = {F(agent.P50 - rawArgv.P50)} ms: the agent's software overhead; raw(agent argv) − raw(minimal) p50 = {F(rawArgv.P50 - raw.P50)} ms: the cost of the argv the agent chooses.");
        L($"- raw `qemu-img create` p50 {F(new Stats(r.RawQemuImgMs).P50)} ms; agent DELETE ?force=true p50 {F(new Stats(r.AgentDeleteMs).P50)} ms, p95 {F(new Stats(r.AgentDeleteMs).P95)} ms.");
        L();
        L("Per-round p50 (ms), to show drift:");
        L();
        L("| Round | " + string.Join(" | ", new[] { Bench.Raw, Bench.RawAgentArgv, Bench.Agent }) + " |");
        L("|---|---|---|---|");
        foreach (var round in r.RoundP50.GroupBy(x => x.Round))
            L($"| {round.Key} | " + string.Join(" | ", new[] { Bench.Raw, Bench.RawAgentArgv, Bench.Agent }.Select(side => F(round.FirstOrDefault(x => x.Side == side).P50))) + " |");
        L();
        L("All samples (ms, in order):");
        L();
        foreach (var (side, values) in r.CreateStart)
            L($"- {side}: {string.Join(", ", values.Select(v => F(v, 0)))}");
        L();
        L("## Agent");
        L();
        var cold = new Stats(r.ColdStartMs);
        var rss = new Stats(r.IdleRssKib.Select(k => (double)k));
        L("| Figure | Result | Goal (DESIGN §5) |");
        L("|---|---|---|");
        L($"| Cold start: exec → first `/healthz` 200, empty data dir ({cold.Count} runs) | p50 **{F(cold.P50)} ms** (min {F(cold.Min)}, max {F(cold.Max)}) | < 500 ms |");
        L($"| Idle RSS 1 s after the first 200, no VMs | **{Mib((long)rss.P50)} MiB** (min {Mib((long)rss.Min)}, max {Mib((long)rss.Max)}) | < 80 MiB |");
        L($"| RSS with {o.Vms} running VMs, after the rounds | {Mib(r.RssWithRunningKib)} MiB | ≤ 1 MiB per VM |");
        L($"| RSS with 100 defined, stopped VMs after the GETs | {Mib(r.RssWith100DefinedKib)} MiB | |");
        foreach (var (n, g) in r.Gets.OrderBy(g => g.Key))
        {
            L($"| GET /v1/vms, {n} stopped VMs ({g.List.Count} requests, {g.Bytes} bytes) | p50 {F(g.List.P50, 2)} ms, **p99 {F(g.List.P99, 2)} ms**, max {F(g.List.Max, 2)} | p99 < 2 ms at 100 |");
            L($"| GET /v1/vms/{{id}}, {n} stopped VMs | p50 {F(g.One.P50, 2)} ms, p99 {F(g.One.P99, 2)} ms, max {F(g.One.Max, 2)} | p99 < 2 ms |");
        }
        var adopt = new Stats(r.AdoptionMs);
        var adoptLog = new Stats(r.AdoptionLogMs);
        L($"| Restart with {r.AdoptedVms} running VMs: exec → GET lists all running ({adopt.Count} restarts) | p50 **{F(adopt.P50)} ms** (min {F(adopt.Min)}, max {F(adopt.Max)}); the agent's own load+adopt log: p50 {F(adoptLog.P50, 0)} ms | 100 VMs in < 0.5 s |");
        L();
        L("## The agent's QEMU argv (first VM), for comparison with raw.sh --argv agent");
        L();
        L("```");
        L(r.AgentArgv);
        L("```");
        return s.ToString();
    }
}
