using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Kvm.Agent.Qemu;

namespace Kvm.Agent.GuestAgent;

/// <summary>What <c>guest-info</c>, <c>guest-get-host-name</c> and <c>guest-get-osinfo</c> say about the guest.</summary>
public sealed record GuestInfo(string? AgentVersion, string? Hostname, string? OsName, string? OsVersion, string? KernelRelease, IReadOnlyList<string> Commands);

/// <summary>The outcome of a program run in the guest with <c>guest-exec</c>.</summary>
public sealed record GuestExecResult(int ExitCode, string StdOut, string StdErr);

/// <summary>One interface from <c>guest-network-get-interfaces</c>.</summary>
public sealed record GuestNic(string Name, string? Mac, IReadOnlyList<string> Ipv4, IReadOnlyList<string> Ipv6);

/// <summary>
/// The guest agents of all VMs: one session at a time per VM (the chardev socket has a single client), each
/// bounded end to end. Nothing is kept open between calls, so a guest agent that hangs costs one timeout, never a
/// stuck connection. The socket lives in the VM's run directory (<see cref="QemuCommand.GuestAgentSocket(string)"/>).
/// </summary>
public sealed class GuestAgents(AgentOptions options)
{
    /// <summary>Bound for connecting and <c>guest-sync-delimited</c>.</summary>
    public static TimeSpan SyncTimeout { get; } = TimeSpan.FromSeconds(3);

    private readonly ConcurrentDictionary<long, SemaphoreSlim> _sessions = new();

    /// <summary>The VM's guest agent socket.</summary>
    public string SocketOf(long vmId) =>
        QemuCommand.GuestAgentSocket(Path.Combine(options.RunDir, vmId.ToString(CultureInfo.InvariantCulture)));

    /// <summary>Runs <paramref name="action"/> in one synchronized session; throws <see cref="TimeoutException"/>, <see cref="IOException"/> or <see cref="QgaException"/>.</summary>
    public async Task<T> WithSessionAsync<T>(long vmId, TimeSpan syncTimeout, Func<QgaClient, Task<T>> action, CancellationToken cancellationToken)
    {
        var gate = _sessions.GetOrAdd(vmId, _ => new SemaphoreSlim(1, 1));
        if (!await gate.WaitAsync(syncTimeout, cancellationToken))
            throw new TimeoutException($"another guest agent session of VM {vmId} did not finish within {syncTimeout.TotalSeconds:0.#} s.");
        try
        {
            if (!File.Exists(SocketOf(vmId)))
                throw new IOException("the VM has no guest agent channel (it is not running, or agent.enabled was off when it started).");
            await using var client = await QgaClient.ConnectAsync(SocketOf(vmId), syncTimeout, cancellationToken);
            return await action(client);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>One command in its own session.</summary>
    public Task<JsonNode?> ExecuteAsync(long vmId, string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        WithSessionAsync(vmId, SyncTimeout, c => c.ExecuteAsync(command, arguments, timeout, cancellationToken), cancellationToken);

    /// <summary><c>guest-ping</c>: true when the guest agent answers in time.</summary>
    public async Task<bool> PingAsync(long vmId, CancellationToken cancellationToken = default)
    {
        try
        {
            await ExecuteAsync(vmId, "guest-ping", cancellationToken: cancellationToken);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or IOException or QgaException)
        {
            return false;
        }
    }

    /// <summary><c>guest-info</c>, <c>guest-get-host-name</c> and (when the guest agent has it) <c>guest-get-osinfo</c>, in one session.</summary>
    public Task<GuestInfo> GetInfoAsync(long vmId, CancellationToken cancellationToken = default) =>
        WithSessionAsync(vmId, SyncTimeout, async c =>
        {
            var info = await c.ExecuteAsync("guest-info", cancellationToken: cancellationToken);
            var commands = (info?["supported_commands"] as JsonArray)?.OfType<JsonObject>()
                .Where(o => o["enabled"]?.GetValue<bool>() != false)
                .Select(o => o["name"]?.GetValue<string>()).OfType<string>().Order(StringComparer.Ordinal).ToList() ?? [];
            var host = await c.ExecuteAsync("guest-get-host-name", cancellationToken: cancellationToken);
            JsonNode? os = null;
            if (commands.Contains("guest-get-osinfo"))
                os = await c.ExecuteAsync("guest-get-osinfo", cancellationToken: cancellationToken);
            return new GuestInfo(
                info?["version"]?.GetValue<string>(),
                host?["host-name"]?.GetValue<string>(),
                os?["pretty-name"]?.GetValue<string>() ?? os?["name"]?.GetValue<string>(),
                os?["version-id"]?.GetValue<string>(),
                os?["kernel-release"]?.GetValue<string>(),
                commands);
        }, cancellationToken);

    /// <summary><c>guest-network-get-interfaces</c>, with link-local IPv6 addresses dropped.</summary>
    public async Task<IReadOnlyList<GuestNic>> GetInterfacesAsync(long vmId, TimeSpan? syncTimeout = null, CancellationToken cancellationToken = default)
    {
        var reply = await WithSessionAsync(vmId, syncTimeout ?? SyncTimeout,
            c => c.ExecuteAsync("guest-network-get-interfaces", cancellationToken: cancellationToken), cancellationToken);
        return ParseInterfaces(reply);
    }

    /// <summary>Parses the reply of <c>guest-network-get-interfaces</c>.</summary>
    public static IReadOnlyList<GuestNic> ParseInterfaces(JsonNode? reply)
    {
        var nics = new List<GuestNic>();
        foreach (var nic in (reply as JsonArray)?.OfType<JsonObject>() ?? [])
        {
            var v4 = new List<string>();
            var v6 = new List<string>();
            foreach (var address in (nic["ip-addresses"] as JsonArray)?.OfType<JsonObject>() ?? [])
            {
                var ip = address["ip-address"]?.GetValue<string>();
                if (ip is null)
                    continue;
                if (address["ip-address-type"]?.GetValue<string>() == "ipv4")
                    v4.Add(ip);
                else if (!ip.StartsWith("fe80:", StringComparison.OrdinalIgnoreCase))
                    v6.Add(ip);
            }
            nics.Add(new GuestNic(nic["name"]?.GetValue<string>() ?? "", nic["hardware-address"]?.GetValue<string>()?.ToLowerInvariant(), v4, v6));
        }
        return nics;
    }

    /// <summary>
    /// <c>guest-shutdown</c> (powerdown): true when the guest agent took it, false when it did not answer in time (the caller falls
    /// back to ACPI). The command has no reply on success: the guest agent exits as the guest goes down.
    /// </summary>
    public async Task<bool> TryShutdownAsync(long vmId, CancellationToken cancellationToken = default)
    {
        try
        {
            await WithSessionAsync(vmId, SyncTimeout, async c =>
            {
                await c.SendWithoutReplyAsync("guest-shutdown", new JsonObject { ["mode"] = "powerdown" }, TimeSpan.FromSeconds(1), cancellationToken);
                return true;
            }, cancellationToken);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or IOException or QgaException)
        {
            return false;
        }
    }

    /// <summary><c>guest-fsfreeze-freeze</c>: the number of file systems frozen. Thaw soon: a frozen guest stops writing.</summary>
    public async Task<int> FreezeAsync(long vmId, CancellationToken cancellationToken = default) =>
        (await ExecuteAsync(vmId, "guest-fsfreeze-freeze", timeout: TimeSpan.FromSeconds(30), cancellationToken: cancellationToken))?.GetValue<int>() ?? 0;

    /// <summary><c>guest-fsfreeze-thaw</c>: the number of file systems thawed.</summary>
    public async Task<int> ThawAsync(long vmId, CancellationToken cancellationToken = default) =>
        (await ExecuteAsync(vmId, "guest-fsfreeze-thaw", timeout: TimeSpan.FromSeconds(30), cancellationToken: cancellationToken))?.GetValue<int>() ?? 0;

    /// <summary><c>guest-fsfreeze-status</c>: <c>thawed</c> or <c>frozen</c>.</summary>
    public async Task<string> FreezeStatusAsync(long vmId, CancellationToken cancellationToken = default) =>
        (await ExecuteAsync(vmId, "guest-fsfreeze-status", cancellationToken: cancellationToken))?.GetValue<string>() ?? "unknown";

    /// <summary><c>guest-fstrim</c> on every mounted file system; returns the guest agent's per-path report.</summary>
    public Task<JsonNode?> TrimAsync(long vmId, CancellationToken cancellationToken = default) =>
        ExecuteAsync(vmId, "guest-fstrim", timeout: TimeSpan.FromMinutes(2), cancellationToken: cancellationToken);

    /// <summary>
    /// Runs a program in the guest (<c>guest-exec</c>, output captured) and polls <c>guest-exec-status</c> until it ends, all within
    /// <paramref name="timeout"/>. Each poll is its own short session, so other users of the channel are not locked out meanwhile.
    /// </summary>
    public async Task<GuestExecResult> ExecAsync(long vmId, string path, IReadOnlyList<string> args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var started = await ExecuteAsync(vmId, "guest-exec", new JsonObject
        {
            ["path"] = path,
            ["arg"] = new JsonArray([.. args.Select(a => (JsonNode)JsonValue.Create(a))]),
            ["capture-output"] = true,
        }, cancellationToken: cancellationToken);
        var pid = started?["pid"]?.GetValue<long>() ?? throw new QgaException("guest-exec", "GenericError", "no pid in the reply");
        while (true)
        {
            var status = await ExecuteAsync(vmId, "guest-exec-status", new JsonObject { ["pid"] = pid }, cancellationToken: cancellationToken);
            if (status?["exited"]?.GetValue<bool>() == true)
                return new GuestExecResult(status["exitcode"]?.GetValue<int>() ?? -1, Decode(status["out-data"]), Decode(status["err-data"]));
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"{path} did not finish in the guest within {timeout.TotalSeconds:0.#} s.");
            await Task.Delay(200, cancellationToken);
        }

        static string Decode(JsonNode? base64) =>
            base64?.GetValue<string>() is { } text ? System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(text)) : "";
    }
}
