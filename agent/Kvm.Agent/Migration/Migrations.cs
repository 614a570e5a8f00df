using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Agent.Vms;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Migration;

/// <summary>
/// Both ends of a VM migration between two agents. The source prepares (validates, takes the VM's lock and keeps it),
/// sends (live: disks mirrored over NBD while QEMU migrates memory; cold: <c>qemu-img convert</c> into NBD exports), and is
/// finished (the VM deleted here) or cancelled (the VM resumed). The target creates the VM locked in an incoming state with
/// empty disks and exports them (live: QEMU's own NBD server and <c>-incoming defer</c>; cold: a <c>qemu-storage-daemon</c> it
/// owns by PID), then completes (the VM becomes a normal VM) or aborts (everything it made is removed).
/// The orchestrator (Kvm.Client <c>VmMigration</c>) drives the steps; nothing here deletes a source before the target completed.
/// </summary>
public sealed partial class Migrations(
    VmStore store,
    VmRuntime runtime,
    VmLocks locks,
    VmOperations vms,
    HostFacts facts,
    AgentOptions options,
    QemuImg qemuImg,
    ICommandRunner runner,
    ILogger<Migrations> logger,
    IServiceProvider services) : IAsyncDisposable
{
    /// <summary>An incoming migration that neither completes nor aborts within this is aborted (the source keeps the VM).</summary>
    public static readonly TimeSpan IncomingLifetime = TimeSpan.FromHours(6);
    /// <summary>A prepared migration whose send never started within this is cancelled (the VM unlocked). Once sent, only finish or cancel end it.</summary>
    public static readonly TimeSpan PreparedLifetime = TimeSpan.FromMinutes(30);
    private static readonly TimeSpan DefaultSendTimeout = TimeSpan.FromHours(1);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    private const string MirrorPrefix = "migrate-";
    private const string EfiSlot = "efi-vars";

    private readonly ConcurrentDictionary<long, Outgoing> _outgoing = new();
    private readonly ConcurrentDictionary<long, Incoming> _incoming = new();

    private IVmStorage Storage => services.GetService<IVmStorage>() ?? throw AgentProblemException.InvalidState("storage is not configured on this agent; it cannot migrate VMs.");

    private sealed class Outgoing(IDisposable held, bool online, bool wasRunning)
    {
        public IDisposable Held { get; } = held;
        public bool Online { get; } = online;
        public bool WasRunning { get; } = wasRunning;
        public bool StoppedForCopy { get; set; }
        public bool Sending { get; set; }
        public bool Sent { get; set; }
        public Timer? Expiry { get; set; }
    }

    private sealed class Incoming(IDisposable held, bool online, bool startAfter)
    {
        public IDisposable Held { get; } = held;
        public bool Online { get; } = online;
        public bool StartAfter { get; } = startAfter;
        public List<string> CreatedFiles { get; } = [];
        public int? DaemonPid { get; set; }
        public Timer? Expiry { get; set; }
    }

    private string MarkerDir => Path.Combine(options.DataDir, "migrations");
    private string MarkerOf(long vmId) => Path.Combine(MarkerDir, vmId.ToString(CultureInfo.InvariantCulture) + ".incoming");

    // ── source ────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>Validates that the VM can move, locks it until finish or cancel, and describes what the target must make.</summary>
    public async Task<MigrationPlan> PrepareAsync(long vmId, bool online, CancellationToken cancellationToken)
    {
        var held = await locks.AcquireAsync(vmId, cancellationToken);
        try
        {
            var stored = store.Get(vmId);
            if (_outgoing.ContainsKey(vmId) || _incoming.ContainsKey(vmId))
                throw AgentProblemException.InvalidState($"VM {vmId} is being migrated already.");
            var spec = Defaults.Apply(stored.Spec);
            Refuse(stored.Spec);
            if (services.GetService<Snapshots.VmSnapshots>()?.List(vmId) is { Count: > 0 } snapshots)
                throw AgentProblemException.Invalid("", $"VM {vmId} has snapshots ({string.Join(", ", snapshots.Select(s => s.Name))}); they live inside its disk images and are not migrated. Delete them first.");
            services.GetService<VmClones>()?.RefuseDeleteWhileLinked(vmId);
            var status = runtime.StatusOf(vmId);
            if (runtime.IsUp(vmId) && status is not (VmStatus.Running or VmStatus.Paused))
                throw AgentProblemException.InvalidState($"VM {vmId} is {status}; stop it or fix it before migrating.");
            var running = runtime.IsUp(vmId);
            var (disks, _) = await Storage.ResolveAsync(vmId, spec, cancellationToken);
            var planDisks = new Dictionary<string, MigrationDisk>(StringComparer.Ordinal);
            foreach (var (slot, file) in disks)
            {
                var info = await qemuImg.InfoAsync(file.Path, file.Format, cancellationToken);
                planDisks[slot] = new MigrationDisk { Format = file.Format, VirtualSize = info.VirtualSize };
            }
            long? efiSize = spec.Firmware?.Type == "uefi" && File.Exists(store.EfiVarsPath(vmId)) ? new FileInfo(store.EfiVarsPath(vmId)).Length : null;
            var live = running && online;
            var outgoing = new Outgoing(held, live, running);
            _outgoing[vmId] = outgoing;
            Arm(vmId, outgoing);
            LogPrepared(logger, vmId, live ? "live" : "cold", planDisks.Count);
            return new MigrationPlan
            {
                VmId = vmId,
                Spec = stored.CopySpec(),
                Online = live,
                Disks = planDisks,
                EfiVarsSize = efiSize,
                QemuVersion = facts.QemuVersion.ToString(),
                StartAfter = running && !online && spec.PowerState != "stopped",
            };
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    /// <summary>Copies the VM to the prepared target: live (mirror + migrate, the source ends paused) or cold.</summary>
    public async Task<MigrationSendResult> SendAsync(long vmId, MigrationSendRequest request, CancellationToken cancellationToken)
    {
        var outgoing = _outgoing.GetValueOrDefault(vmId) ?? throw AgentProblemException.InvalidState($"VM {vmId} has no prepared migration; prepare it first.");
        if (outgoing.Sent || outgoing.Sending)
            throw AgentProblemException.InvalidState($"VM {vmId} is being sent or was sent already; finish or cancel the migration.");
        var target = request.Target;
        if (target.Online != outgoing.Online)
            throw AgentProblemException.Invalid("target.online", "the target prepared a different kind of migration than this source.");
        if (!IPAddress.TryParse(target.Address, out var address))
            throw AgentProblemException.Invalid("target.address", $"\"{target.Address}\" is not an IP address.");
        var timeout = request.TimeoutSeconds is { } s and > 0 and <= 86400 ? TimeSpan.FromSeconds(s) : DefaultSendTimeout;
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        var stored = store.Get(vmId);
        var spec = Defaults.Apply(stored.Spec);
        var slots = await SlotsAsync(vmId, spec, cancellationToken);
        foreach (var slot in slots.Keys.Where(k => !target.Exports.ContainsKey(k)))
            throw AgentProblemException.Invalid("target.exports", $"the target exports no disk for {slot}.");
        lock (outgoing)
        {
            if (outgoing.Sent || outgoing.Sending)
                throw AgentProblemException.InvalidState($"VM {vmId} is being sent or was sent already; finish or cancel the migration.");
            outgoing.Sending = true; // from here on every way out clears it
        }
        outgoing.Expiry?.Dispose();
        MigrationSendResult result;
        try
        {
            if (outgoing.Online)
            {
                var monitor = runtime.MonitorOf(vmId) ?? throw AgentProblemException.InvalidState($"VM {vmId} stopped since the migration was prepared.");
                result = await SendLiveAsync(monitor, slots, address, target, bounded.Token);
            }
            else
            {
                if (runtime.IsUp(vmId))
                {
                    var seconds = spec.UpdatePolicy?.ShutdownTimeoutSeconds ?? 120;
                    await runtime.ShutdownAsync(vmId, TimeSpan.FromSeconds(seconds), force: true, bounded.Token);
                    outgoing.StoppedForCopy = true;
                }
                result = await SendColdAsync(slots, address, target, bounded.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            outgoing.Sending = false;
            Arm(vmId, outgoing); // a failed send is cancelled by the orchestrator; if it never comes, the lock still ends
            throw AgentProblemException.HostCommand($"Sending VM {vmId} did not finish within {timeout.TotalSeconds:0} s.");
        }
        catch
        {
            outgoing.Sending = false;
            Arm(vmId, outgoing);
            throw;
        }
        outgoing.Sending = false;
        outgoing.Sent = true;
        LogSent(logger, vmId, result.DiskBytes, result.RamBytes, result.DowntimeMs ?? 0);
        return result;
    }

    /// <summary>The target runs the VM now: delete it here (paused QEMU, definition, disks, EFI store) and unlock.</summary>
    public async Task FinishAsync(long vmId, CancellationToken cancellationToken)
    {
        var outgoing = _outgoing.GetValueOrDefault(vmId) ?? throw AgentProblemException.InvalidState($"VM {vmId} has no migration in progress.");
        if (!outgoing.Sent)
            throw AgentProblemException.InvalidState($"VM {vmId} was not sent; cancel the migration instead.");
        await vms.DeleteHeldAsync(vmId, force: true, stop: false, TimeSpan.Zero, cancellationToken, migratedAway: true);
        _outgoing.TryRemove(vmId, out _);
        outgoing.Expiry?.Dispose();
        outgoing.Held.Dispose();
        LogFinished(logger, vmId);
    }

    private void Arm(long vmId, Outgoing outgoing)
    {
        outgoing.Expiry?.Dispose();
        outgoing.Expiry = new Timer(_ => _ = ExpirePreparedAsync(vmId, outgoing), null, PreparedLifetime, Timeout.InfiniteTimeSpan);
    }

    private async Task ExpirePreparedAsync(long vmId, Outgoing outgoing)
    {
        if (_outgoing.TryGetValue(vmId, out var current) && ReferenceEquals(current, outgoing) && !outgoing.Sending && !outgoing.Sent)
            await CancelAsync(vmId, CancellationToken.None);
    }

    /// <summary>Gives the VM back: block jobs ended, resumed (or started again) as it was, unlocked. Nothing to cancel is success.</summary>
    public async Task CancelAsync(long vmId, CancellationToken cancellationToken)
    {
        // A send whose client gave up is cancelled with its request and cleans up after itself: wait for that (bounded).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (_outgoing.TryGetValue(vmId, out var sending) && sending.Sending)
        {
            if (DateTime.UtcNow > deadline)
                throw AgentProblemException.InvalidState($"VM {vmId} is still being sent; cancel again once the send has ended.");
            await Task.Delay(Poll, cancellationToken);
        }
        if (!_outgoing.TryRemove(vmId, out var outgoing))
            return;
        outgoing.Expiry?.Dispose();
        try
        {
            if (runtime.MonitorOf(vmId) is { } monitor)
            {
                await CleanupMirrorsAsync(monitor, force: true, TimeSpan.FromSeconds(30), CancellationToken.None);
                await monitor.RefreshStatusAsync(cancellationToken);
                if (outgoing.WasRunning && monitor.Status != VmStatus.Running && Defaults.Apply(store.Get(vmId).Spec).PowerState != "paused")
                    await runtime.ResumeAsync(vmId, cancellationToken);
            }
            else if (outgoing.StoppedForCopy && store.Find(vmId) is { } stored)
            {
                await runtime.StartAsync(stored, cancellationToken);
            }
        }
        finally
        {
            outgoing.Held.Dispose();
            LogCancelled(logger, vmId);
        }
    }

    private async Task<Dictionary<string, DiskFile>> SlotsAsync(long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var (disks, _) = await Storage.ResolveAsync(vmId, spec, cancellationToken);
        var slots = new Dictionary<string, DiskFile>(disks, StringComparer.Ordinal);
        if (spec.Firmware?.Type == "uefi")
            slots[EfiSlot] = new DiskFile(store.EfiVarsPath(vmId), "raw");
        return slots;
    }

    private static string NodeOf(string slot) => slot == EfiSlot ? QemuCommand.EfiVarsNode : QemuCommand.DriveNode(slot);

    private static string HostPort(IPAddress address, int port) =>
        (address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString()) + ":" + port.ToString(CultureInfo.InvariantCulture);

    private async Task<MigrationSendResult> SendLiveAsync(VmMonitor monitor, Dictionary<string, DiskFile> slots, IPAddress address, IncomingMigration target, CancellationToken cancellationToken)
    {
        var migrating = false;
        try
        {
            foreach (var slot in slots.Keys)
            {
                await monitor.ExecuteAsync("blockdev-add", new JsonObject
                {
                    ["driver"] = "nbd",
                    ["node-name"] = MirrorPrefix + slot,
                    ["server"] = new JsonObject { ["type"] = "inet", ["host"] = address.ToString(), ["port"] = target.NbdPort.ToString(CultureInfo.InvariantCulture) },
                    ["export"] = target.Exports[slot],
                }, cancellationToken: cancellationToken);
                await monitor.ExecuteAsync("blockdev-mirror", new JsonObject
                {
                    ["job-id"] = MirrorPrefix + slot,
                    ["device"] = NodeOf(slot),
                    ["target"] = MirrorPrefix + slot,
                    ["sync"] = "full",
                }, cancellationToken: cancellationToken);
            }
            // Every mirror in sync (READY) first: from then on each guest write goes to both copies.
            long diskBytes = 0;
            while (true)
            {
                var jobs = (await monitor.ExecuteAsync("query-block-jobs", cancellationToken: cancellationToken) as JsonArray ?? []).OfType<JsonObject>()
                    .Where(j => j["device"]?.GetValue<string>()?.StartsWith(MirrorPrefix, StringComparison.Ordinal) == true).ToList();
                if (jobs.Count < slots.Count)
                    throw AgentProblemException.HostCommand($"A disk mirror to the target ended early ({string.Join(", ", slots.Keys.Where(s => jobs.All(j => j["device"]?.GetValue<string>() != MirrorPrefix + s)))}); see the QEMU log.");
                if (jobs.FirstOrDefault(j => j["status"]?.GetValue<string>() is "aborting" or "concluded" && j["error"] is not null) is { } failed)
                    throw AgentProblemException.HostCommand($"Mirroring {failed["device"]} failed: {failed["error"]}");
                if (jobs.All(j => j["ready"]?.GetValue<bool>() == true))
                {
                    diskBytes = jobs.Sum(j => j["offset"]?.GetValue<long>() ?? 0);
                    break;
                }
                await Task.Delay(Poll, cancellationToken);
            }
            migrating = true;
            await monitor.ExecuteAsync("migrate", new JsonObject { ["uri"] = "tcp:" + HostPort(address, target.MigrationPort!.Value) }, cancellationToken: cancellationToken);
            JsonObject info;
            while (true)
            {
                info = await monitor.ExecuteAsync("query-migrate", cancellationToken: cancellationToken) as JsonObject ?? [];
                var status = info["status"]?.GetValue<string>();
                if (status == "completed")
                    break;
                if (status is "failed" or "cancelled")
                    throw AgentProblemException.HostCommand($"QEMU's migration {status}: {info["error-desc"]?.GetValue<string>() ?? "no reason given"}.");
                await Task.Delay(Poll, cancellationToken);
            }
            migrating = false;
            // The source is paused (postmigrate) and the target holds the memory. A mirror copies writes in the background, so
            // it may still hold dirty blocks: a plain cancel of a READY mirror copies them, then ends without switching over.
            // Only when every mirror ended that way has the target every block; the target's guest runs only after that.
            if (!await CleanupMirrorsAsync(monitor, force: false, TimeSpan.FromMinutes(5), cancellationToken))
                throw AgentProblemException.HostCommand($"The disk mirrors of VM {monitor.VmId} did not finish their last copy; the migration is not complete.");
            await monitor.RefreshStatusAsync(cancellationToken);
            return new MigrationSendResult
            {
                DiskBytes = diskBytes,
                RamBytes = info["ram"]?["transferred"]?.GetValue<long>() ?? 0,
                DowntimeMs = info["downtime"]?.GetValue<long>(),
            };
        }
        catch (Exception e) when (e is QmpException or IOException or TimeoutException or OperationCanceledException or AgentProblemException)
        {
            if (migrating)
            {
                try { await monitor.ExecuteAsync("migrate_cancel", timeout: TimeSpan.FromSeconds(5)); }
                catch (Exception again) when (again is QmpException or IOException or TimeoutException or AgentProblemException) { }
            }
            await CleanupMirrorsAsync(monitor, force: true, TimeSpan.FromSeconds(30), CancellationToken.None);
            if (e is QmpException q)
                throw AgentProblemException.HostCommand($"Live migration of VM {monitor.VmId} failed: {q.Description}");
            throw;
        }
    }

    /// <summary>
    /// Ends this agent's mirror jobs and removes their NBD nodes; idempotent, bounded by <paramref name="within"/>. Without
    /// <paramref name="force"/> a mirror in sync first copies what is still dirty (the success path); with it, mirrors are
    /// abandoned at once (a failed migration). True when no mirror job is left.
    /// </summary>
    private static async Task<bool> CleanupMirrorsAsync(VmMonitor monitor, bool force, TimeSpan within, CancellationToken cancellationToken)
    {
        var ended = false;
        var cancelled = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var deadline = DateTime.UtcNow + within;
            while (DateTime.UtcNow < deadline)
            {
                var jobs = (await monitor.ExecuteAsync("query-block-jobs", cancellationToken: cancellationToken) as JsonArray ?? []).OfType<JsonObject>()
                    .Select(j => (Id: j["device"]?.GetValue<string>(), Status: j["status"]?.GetValue<string>()))
                    .Where(j => j.Id?.StartsWith(MirrorPrefix, StringComparison.Ordinal) == true).ToList();
                if (jobs.Count == 0)
                {
                    ended = true;
                    break;
                }
                foreach (var job in jobs)
                {
                    try
                    {
                        if (job.Status == "concluded")
                            await monitor.ExecuteAsync("job-dismiss", new JsonObject { ["id"] = job.Id }, cancellationToken: cancellationToken);
                        else if (job.Status is not ("aborting" or "waiting" or "pending") && cancelled.Add(job.Id!))
                            await monitor.ExecuteAsync("block-job-cancel", new JsonObject { ["device"] = job.Id, ["force"] = force }, cancellationToken: cancellationToken);
                    }
                    catch (QmpException) { } // it ended meanwhile
                }
                await Task.Delay(Poll, cancellationToken);
            }
            var nodes = await monitor.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken: cancellationToken) as JsonArray ?? [];
            foreach (var name in nodes.OfType<JsonObject>().Select(n => n["node-name"]?.GetValue<string>()).Where(n => n?.StartsWith(MirrorPrefix, StringComparison.Ordinal) == true).Distinct())
            {
                try { await monitor.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = name }, cancellationToken: cancellationToken); }
                catch (QmpException) { }
            }
        }
        catch (Exception e) when (e is IOException or TimeoutException or AgentProblemException or QmpException or OperationCanceledException) { }
        return ended;
    }

    private async Task<MigrationSendResult> SendColdAsync(Dictionary<string, DiskFile> slots, IPAddress address, IncomingMigration target, CancellationToken cancellationToken)
    {
        long bytes = 0;
        var qemuImgBinary = services.GetRequiredService<StorageOptions>().QemuImgBinary;
        foreach (var (slot, file) in slots)
        {
            var url = $"nbd://{HostPort(address, target.NbdPort)}/{Uri.EscapeDataString(target.Exports[slot])}";
            // -n: the target made the image; --target-is-zero: it is new and empty, so holes stay holes.
            var result = await runner.RunAsync([qemuImgBinary, "convert", "-q", "-n", "--target-is-zero", "-f", file.Format, "-O", "raw", file.Path, url],
                TimeSpan.FromHours(6), cancellationToken);
            if (!result.Ok)
                throw AgentProblemException.HostCommand($"Copying {slot} to the target failed: {result.StdErr.Trim()}");
            bytes += new FileInfo(file.Path).Length;
        }
        return new MigrationSendResult { DiskBytes = bytes };
    }

    // ── target ────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Makes the VM here in an incoming state (locked; nothing else can start, change or delete it), with empty disks of the
    /// source's sizes, and exports them on <paramref name="listen"/>. Any failure removes what this request made.
    /// </summary>
    public async Task<IncomingMigration> CreateIncomingAsync(MigrationPlan plan, IPAddress listen, CancellationToken cancellationToken)
    {
        var spec = plan.Spec;
        spec.VmId = plan.VmId;
        var invalid = Validator.Validate(spec).Concat(MigrationRules.Unsupported(spec)).ToList();
        if (invalid.Count > 0)
            throw AgentProblemException.Validation(invalid.Select(e => new ProblemError(e.Attribute, e.Detail)), "The VM cannot be migrated to this host.");
        var effective = Defaults.Apply(spec);
        runtime.RequireServices(effective);
        var missing = (effective.NetworkInterfaces ?? []).Where(n => n.Value.Bridge is { } bridge && !Directory.Exists(Path.Combine("/sys/class/net", bridge)))
            .Select(n => new ProblemError(Model.Schema.AttrPath.Root.Attr("network_interfaces").Key(n.Key).Attr("bridge").ToString(), $"this host has no bridge \"{n.Value.Bridge}\".")).ToList();
        if (missing.Count > 0)
            throw AgentProblemException.Validation(missing, "The VM cannot be migrated to this host.");
        if (plan.Online && plan.QemuVersion != facts.QemuVersion.ToString())
            throw AgentProblemException.Invalid("", $"a live migration needs the same QEMU on both hosts: the source runs {plan.QemuVersion}, this host {facts.QemuVersion}. Stop the VM to migrate it cold.");
        foreach (var slot in plan.Disks.Keys.Where(s => effective.Disks?.ContainsKey(s) != true))
            throw AgentProblemException.Invalid("disks", $"the plan names disk {slot}, which the VM does not have.");

        StoredVm stored;
        IDisposable held;
        await store.CreateLock.WaitAsync(cancellationToken);
        try
        {
            if (_incoming.ContainsKey(plan.VmId) || _outgoing.ContainsKey(plan.VmId))
                throw AgentProblemException.Conflict($"VM {plan.VmId} is being migrated already.");
            stored = store.Create(spec); // 409 when the vm_id or the name is taken here
            held = await locks.AcquireAsync(stored.VmId, cancellationToken);
        }
        finally
        {
            store.CreateLock.Release();
        }
        var incoming = new Incoming(held, plan.Online, plan.StartAfter);
        _incoming[plan.VmId] = incoming;
        Directory.CreateDirectory(MarkerDir);
        Durable.WriteAtomically(MarkerOf(plan.VmId), "{}"u8.ToArray());
        try
        {
            var (disks, _) = await Storage.ResolveAsync(plan.VmId, effective, cancellationToken);
            foreach (var (slot, disk) in plan.Disks)
            {
                var path = disks[slot].Path;
                if (!await qemuImg.CreateAsync(path, disk.Format, disk.VirtualSize, "off", cancellationToken))
                    throw AgentProblemException.Conflict($"{path} exists already on this host; the migration will not overwrite it.");
                incoming.CreatedFiles.Add(path);
            }
            var slots = new Dictionary<string, DiskFile>(disks.Where(d => plan.Disks.ContainsKey(d.Key)).ToDictionary(d => d.Key, d => d.Value), StringComparer.Ordinal);
            if (effective.Firmware?.Type == "uefi")
            {
                var efi = store.EfiVarsPath(plan.VmId);
                if (plan.EfiVarsSize is not { } size || !await qemuImg.CreateAsync(efi, "raw", size, "off", cancellationToken))
                    throw AgentProblemException.Conflict($"Cannot make the EFI variable store {efi} for the incoming VM.");
                incoming.CreatedFiles.Add(efi);
                slots[EfiSlot] = new DiskFile(efi, "raw");
            }
            var exports = slots.Keys.ToDictionary(s => s, NodeOf, StringComparer.Ordinal);
            IncomingMigration answer;
            if (plan.Online)
            {
                await runtime.StartIncomingAsync(stored, cancellationToken);
                var monitor = runtime.MonitorOf(plan.VmId) ?? throw AgentProblemException.HostCommand($"QEMU for incoming VM {plan.VmId} is gone.");
                var nbdPort = FreePort(listen);
                await monitor.ExecuteAsync("nbd-server-start", new JsonObject
                {
                    ["addr"] = new JsonObject { ["type"] = "inet", ["data"] = new JsonObject { ["host"] = listen.ToString(), ["port"] = nbdPort.ToString(CultureInfo.InvariantCulture) } },
                }, cancellationToken: cancellationToken);
                foreach (var (slot, node) in exports)
                {
                    await monitor.ExecuteAsync("block-export-add", new JsonObject
                    {
                        ["type"] = "nbd", ["id"] = MirrorPrefix + slot, ["node-name"] = node, ["name"] = node, ["writable"] = true,
                    }, cancellationToken: cancellationToken);
                }
                var migrationPort = FreePort(listen);
                await monitor.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "tcp:" + HostPort(listen, migrationPort) }, cancellationToken: cancellationToken);
                answer = new IncomingMigration { VmId = plan.VmId, Address = listen.ToString(), NbdPort = nbdPort, MigrationPort = migrationPort, Exports = exports, Online = true };
            }
            else
            {
                var nbdPort = await StartStorageDaemonAsync(plan.VmId, slots, exports, listen, incoming, cancellationToken);
                answer = new IncomingMigration { VmId = plan.VmId, Address = listen.ToString(), NbdPort = nbdPort, Exports = exports, Online = false };
            }
            incoming.Expiry = new Timer(_ => _ = ExpireAsync(plan.VmId, incoming), null, IncomingLifetime, Timeout.InfiniteTimeSpan);
            LogIncoming(logger, plan.VmId, plan.Online ? "live" : "cold", answer.Address, answer.NbdPort);
            return answer;
        }
        catch
        {
            await AbortAsync(plan.VmId, CancellationToken.None);
            throw;
        }
    }

    /// <summary>The source has sent everything: stop exporting, let the VM run (live) or start it (cold, when it ran before), unlock.</summary>
    public async Task<Vm> CompleteAsync(long vmId, CancellationToken cancellationToken)
    {
        var incoming = _incoming.GetValueOrDefault(vmId) ?? throw AgentProblemException.NotFound($"No incoming migration of VM {vmId}.");
        var stored = store.Get(vmId);
        if (incoming.Online)
        {
            var monitor = runtime.MonitorOf(vmId) ?? throw AgentProblemException.HostCommand($"QEMU of incoming VM {vmId} is gone; abort the migration.");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var info = await monitor.ExecuteAsync("query-migrate", cancellationToken: cancellationToken) as JsonObject ?? [];
                var status = info["status"]?.GetValue<string>();
                if (status == "completed")
                    break;
                if (status is "failed" or "cancelled" || DateTime.UtcNow > deadline)
                    throw AgentProblemException.InvalidState($"The incoming migration of VM {vmId} is {status ?? "not finished"}; abort it.");
                await Task.Delay(Poll, cancellationToken);
            }
            // Exports go before the guest runs: its devices then take back their exclusive write permission.
            await monitor.ExecuteAsync("nbd-server-stop", cancellationToken: cancellationToken);
            if (Defaults.Apply(stored.Spec).PowerState != "paused")
                await monitor.ExecuteAsync("cont", cancellationToken: cancellationToken);
            await monitor.RefreshStatusAsync(cancellationToken);
        }
        else
        {
            await StopStorageDaemonAsync(incoming);
            if (incoming.StartAfter)
            {
                try { await runtime.StartAsync(stored, cancellationToken); }
                catch (AgentProblemException e) { LogStartAfterFailed(logger, vmId, e.Message); } // the VM is here; its start is the next apply's business
            }
        }
        _incoming.TryRemove(vmId, out _);
        incoming.Expiry?.Dispose();
        SafeFile.DeleteQuietly(MarkerOf(vmId));
        incoming.Held.Dispose();
        LogCompleted(logger, vmId);
        return runtime.Describe(store.Get(vmId));
    }

    /// <summary>Removes an incoming VM and everything made for it (QEMU or storage daemon by PID, disks, EFI store, definition). Nothing to abort is success.</summary>
    public async Task AbortAsync(long vmId, CancellationToken cancellationToken)
    {
        if (!_incoming.TryRemove(vmId, out var incoming))
            return;
        try
        {
            incoming.Expiry?.Dispose();
            await runtime.StopAsync(vmId, cancellationToken);
            await StopStorageDaemonAsync(incoming);
            foreach (var file in incoming.CreatedFiles)
                SafeFile.DeleteQuietly(file);
            if (store.Find(vmId) is { } stored)
            {
                await runtime.CleanupAsync(vmId, Defaults.Apply(stored.Spec));
                runtime.RemoveFiles(vmId);
                store.Delete(vmId);
            }
            SafeFile.DeleteQuietly(MarkerOf(vmId));
            LogAborted(logger, vmId);
        }
        finally
        {
            incoming.Held.Dispose();
        }
    }

    private async Task ExpireAsync(long vmId, Incoming incoming)
    {
        if (_incoming.TryGetValue(vmId, out var current) && ReferenceEquals(current, incoming))
            await AbortAsync(vmId, CancellationToken.None);
    }

    /// <summary>
    /// At agent start: incoming migrations a previous agent left unfinished are aborted (the source still has the VM).
    /// Their QEMU was adopted as an ordinary VM; it is stopped, and the disks made for it removed.
    /// </summary>
    public async Task AbortLeftoversAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(MarkerDir))
            return;
        foreach (var marker in Directory.EnumerateFiles(MarkerDir, "*.incoming"))
        {
            if (!long.TryParse(Path.GetFileNameWithoutExtension(marker), NumberStyles.None, CultureInfo.InvariantCulture, out var vmId))
                continue;
            if (store.Find(vmId) is { } stored)
            {
                using var held = await locks.AcquireAsync(vmId, cancellationToken);
                await runtime.StopAsync(vmId, cancellationToken);
                await Storage.RemoveInlineDisksAsync(vmId, Defaults.Apply(stored.Spec), cancellationToken);
                await runtime.CleanupAsync(vmId, Defaults.Apply(stored.Spec));
                runtime.RemoveFiles(vmId);
                store.Delete(vmId);
            }
            var pidFile = DaemonPidFile(vmId);
            if (HelperProcessFiles.ReadPid(pidFile) is { } pid && IsOurDaemon(pid, pidFile))
                ProcessTable.Signal(pid, Posix.SIGKILL);
            SafeFile.DeleteQuietly(pidFile);
            SafeFile.DeleteQuietly(marker);
            LogAborted(logger, vmId);
        }
    }

    private string DaemonPidFile(long vmId) => Path.Combine(MarkerDir, vmId.ToString(CultureInfo.InvariantCulture) + ".nbd.pid");

    private static bool IsOurDaemon(int pid, string pidFile) =>
        ProcessTable.IsAlive(pid) && ProcessTable.ReadCommandLine(pid).Any(a => a == pidFile);

    private async Task<int> StartStorageDaemonAsync(long vmId, Dictionary<string, DiskFile> slots, Dictionary<string, string> exports, IPAddress listen, Incoming incoming, CancellationToken cancellationToken)
    {
        var pidFile = DaemonPidFile(vmId);
        SafeFile.DeleteQuietly(pidFile);
        var log = Path.Combine(MarkerDir, vmId.ToString(CultureInfo.InvariantCulture) + ".nbd.log");
        for (var attempt = 0; ; attempt++)
        {
            var port = FreePort(listen);
            List<string> argv = ["qemu-storage-daemon"];
            foreach (var (slot, file) in slots)
            {
                argv.AddRange(["--blockdev", QemuOptions.Of("driver=file").Add("filename", file.Path).Add("node-name", "file-" + slot).ToString()]);
                argv.AddRange(["--blockdev", QemuOptions.Of("driver=" + file.Format).Add("file", "file-" + slot).Add("node-name", exports[slot]).ToString()]);
            }
            argv.AddRange(["--nbd-server", QemuOptions.Of("addr.type=inet").Add("addr.host", listen.ToString()).Add("addr.port", port.ToString(CultureInfo.InvariantCulture)).ToString()]);
            foreach (var (slot, name) in exports)
                argv.AddRange(["--export", QemuOptions.Of("type=nbd").Add("id", "export-" + slot).Add("node-name", name).Add("name", name).Add("writable", true).ToString()]);
            argv.AddRange(["--pidfile", pidFile]);
            var pid = runner.SpawnDetached(argv, log);
            incoming.DaemonPid = pid;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (DateTime.UtcNow < deadline && ProcessTable.IsAlive(pid))
            {
                if (await AcceptsAsync(listen, port, cancellationToken))
                    return port;
                await Task.Delay(20, cancellationToken);
            }
            await StopStorageDaemonAsync(incoming);
            if (attempt >= 2)
                throw AgentProblemException.HostCommand($"qemu-storage-daemon for incoming VM {vmId} did not start: {HelperProcessFiles.ReadTail(log, 0, 2048)}");
        }
    }

    private static async Task<bool> AcceptsAsync(IPAddress address, int port, CancellationToken cancellationToken)
    {
        using var client = new TcpClient(address.AddressFamily);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromMilliseconds(500));
            await client.ConnectAsync(address, port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task StopStorageDaemonAsync(Incoming incoming)
    {
        if (incoming.DaemonPid is not { } pid)
            return;
        incoming.DaemonPid = null;
        // The daemon is this agent's child: alive means ours. One that already exited is reaped here.
        await HelperProcessFiles.TerminateAsync(pid, () => ProcessTable.IsAlive(pid));
        await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(1));
        ProcessTable.TakeExit(pid);
    }

    private static int FreePort(IPAddress address)
    {
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void Refuse(VmSpec spec)
    {
        var unsupported = MigrationRules.Unsupported(spec);
        if (unsupported.Count > 0)
            throw AgentProblemException.Validation(unsupported.Select(e => new ProblemError(e.Attribute, e.Detail)), "The VM cannot be migrated.");
    }

    /// <summary>Forgets the in-memory state (locks stay with the dying agent; QEMUs and daemons outlive it).</summary>
    public ValueTask DisposeAsync()
    {
        foreach (var incoming in _incoming.Values)
            incoming.Expiry?.Dispose();
        foreach (var outgoing in _outgoing.Values)
            outgoing.Expiry?.Dispose();
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(140, LogLevel.Information, "VM {VmId}: {Kind} migration prepared ({Disks} disks); the VM is locked until it is finished or cancelled")]
    private static partial void LogPrepared(ILogger logger, long vmId, string kind, int disks);

    [LoggerMessage(141, LogLevel.Information, "VM {VmId} sent: {DiskBytes} disk bytes, {RamBytes} memory bytes, downtime {DowntimeMs} ms")]
    private static partial void LogSent(ILogger logger, long vmId, long diskBytes, long ramBytes, long downtimeMs);

    [LoggerMessage(142, LogLevel.Information, "VM {VmId} migrated away and deleted here")]
    private static partial void LogFinished(ILogger logger, long vmId);

    [LoggerMessage(143, LogLevel.Information, "VM {VmId}: outgoing migration cancelled; the VM stays here")]
    private static partial void LogCancelled(ILogger logger, long vmId);

    [LoggerMessage(144, LogLevel.Information, "VM {VmId}: incoming {Kind} migration, disks exported on {Address} port {Port}")]
    private static partial void LogIncoming(ILogger logger, long vmId, string kind, string address, int port);

    [LoggerMessage(145, LogLevel.Information, "VM {VmId}: incoming migration completed; the VM lives here now")]
    private static partial void LogCompleted(ILogger logger, long vmId);

    [LoggerMessage(146, LogLevel.Warning, "VM {VmId}: incoming migration aborted; what it made is removed")]
    private static partial void LogAborted(ILogger logger, long vmId);

    [LoggerMessage(147, LogLevel.Warning, "VM {VmId}: migrated, but starting it here failed: {Reason}")]
    private static partial void LogStartAfterFailed(ILogger logger, long vmId, string reason);
}
