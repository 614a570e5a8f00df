using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Kvm.Agent.CloudInit;
using Kvm.Agent.Host;
using Kvm.Agent.Networks;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Vms;

/// <summary>What the agent wrote next to a QEMU it started, to recognise it again after a restart.</summary>
public sealed record RunRecord(
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("proc_start")] long? ProcStart,
    [property: JsonPropertyName("started_at")] DateTimeOffset StartedAt,
    [property: JsonPropertyName("accelerator")] string Accelerator);

[JsonSerializable(typeof(RunRecord))]
internal sealed partial class RunJsonContext : JsonSerializerContext;

/// <summary>
/// The QEMU processes of VMs: start (admission, storage, taps, argv, spawn, QMP), stop, power actions, live
/// changes, adoption of QEMUs that outlived a previous agent, and the observed part of every VM the API returns.
/// Callers hold the VM's lock (<see cref="VmLocks"/>); this class never restarts or kills a VM on its own.
/// </summary>
public sealed partial class VmRuntime(
    AgentOptions options,
    HostFacts facts,
    VmStore store,
    VmLocks locks,
    ICommandRunner runner,
    ILogger<VmRuntime> logger,
    IServiceProvider services) : IOnlineResizer, IAsyncDisposable
{
    /// <summary>Memory the host keeps for itself: admission refuses a start that would leave less.</summary>
    public const long HostReserveMib = 1024;
    private static readonly TimeSpan QmpStartTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan QuitGrace = TimeSpan.FromSeconds(3);
    private readonly ConcurrentDictionary<long, VmMonitor> _monitors = new();
    private readonly ConcurrentDictionary<long, string> _lastStatus = new();
    private readonly CancellationTokenSource _disposing = new();
    private readonly Dictionary<long, long> _reservedMib = [];
    private readonly Lock _admission = new();

    private IVmStorage? Storage => services.GetService<IVmStorage>();
    private ITapManager? Taps => services.GetService<ITapManager>();
    private CloudInitSeeds? Seeds => services.GetService<CloudInitSeeds>();
    private Tpm.Swtpm? Swtpm => services.GetService<Tpm.Swtpm>();

    /// <summary>The live monitor of a VM whose QEMU runs, or null.</summary>
    public VmMonitor? MonitorOf(long vmId) => _monitors.TryGetValue(vmId, out var m) && !m.HasExited ? m : null;

    /// <summary>Observed status from memory.</summary>
    public string StatusOf(long vmId) =>
        _monitors.TryGetValue(vmId, out var m) ? m.Status : _lastStatus.GetValueOrDefault(vmId, VmStatus.Stopped);

    /// <summary>True while a QEMU process exists for the VM (running, paused or in an error state).</summary>
    public bool IsUp(long vmId) => MonitorOf(vmId) is not null;

    /// <summary>The VM as the API returns it: the stored spec, untouched, plus what the agent observes.</summary>
    public Vm Describe(StoredVm stored)
    {
        var vm = new Vm();
        foreach (var attribute in Schemas.For<VmSpec>().Attributes)
            attribute.Property.SetValue(vm, attribute.GetValue(stored.Spec));
        var monitor = MonitorOf(stored.VmId);
        vm.Status = StatusOf(stored.VmId); // an exited QEMU not yet cleaned up still reports how it ended
        vm.Pid = monitor?.Pid;
        vm.StartedAt = monitor?.StartedAt.ToString("yyyy-MM-ddTHH:mm:ss.fffK", CultureInfo.InvariantCulture);
        vm.Accelerator = monitor?.Accelerator ?? AcceleratorFor(stored.Spec);
        vm.PendingChanges = monitor is { PendingChanges.Count: > 0 } ? [.. monitor.PendingChanges] : null;
        vm.ConsoleEndpoint = monitor?.ConsoleEndpoint;
        vm.SerialLog = SerialLogPath(stored.VmId);
        if (stored.Spec.NetworkInterfaces is { Count: > 0 } nics)
            vm.MacAddresses = MacsFor(stored.VmId, stored.Spec).ToDictionary();
        vm.HostDeviceSizeBytes = HostDeviceSizes(stored.Spec);
        if (stored.Spec.CloudInit is not null)
            vm.CloudInitInstanceId = Seeds?.StateOf(stored.VmId)?.InstanceId;
        // Passwords and user-data never leave the agent in clear. The copy above shares nested objects with the
        // stored spec, so the part holding secrets is copied before it is redacted.
        if (vm.CloudInit is { } ci)
        {
            vm.CloudInit = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(ci, ModelJsonContext.Default.CloudInitSpec), ModelJsonContext.Default.CloudInitSpec);
            Secrets.Redact(vm);
        }
        // Last observed only: a GET never asks the guest agent, the leases or the neighbour table.
        if (services.GetService<Addresses.VmAddressService>()?.LastSeen(stored.VmId) is { } seen)
            (vm.Ipv4Addresses, vm.Ipv6Addresses, vm.PrimaryIpv4) = (seen.Ipv4Addresses, seen.Ipv6Addresses, seen.PrimaryIpv4);
        return vm;
    }

    /// <summary>kvm or tcg, from the VM's <c>kvm</c> setting or the agent's default.</summary>
    public string AcceleratorFor(VmSpec spec) => spec.Kvm switch { true => "kvm", false => "tcg", null => facts.DefaultAccelerator };

    /// <summary>Refuses a spec that needs a feature this agent was started without (storage, bridged networking).</summary>
    public void RequireServices(VmSpec spec)
    {
        var errors = new List<ProblemError>();
        const string NoStorage = "storage is not configured on this agent.";
        if (Storage is null)
        {
            if (spec.Disks is { Count: > 0 })
                errors.Add(new ProblemError("disks", NoStorage));
            if (spec.Cdroms is { Count: > 0 })
                errors.Add(new ProblemError("cdroms", NoStorage));
            if (spec.Firmware?.Type == "uefi")
                errors.Add(new ProblemError("firmware.type", NoStorage + " UEFI needs an EFI variable store."));
        }
        if (spec.CloudInit is not null && Seeds is null)
            errors.Add(new ProblemError("cloud_init", "cloud-init seeds are not configured on this agent."));
        if (Taps is null)
            foreach (var (slot, nic) in spec.NetworkInterfaces ?? [])
                if (nic.Bridge is not null)
                    errors.Add(new ProblemError(AttrPath.Root.Attr("network_interfaces").Key(slot).Attr("bridge").ToString(), "bridged networking is not configured on this agent."));
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors);
    }

    /// <summary>Refuses a start whose host devices are missing or not ready (PCI, USB, serial devices, shared directories).</summary>
    private static void RequireHostDevices(VmSpec spec)
    {
        // sysfs is read only for VMs that pass host devices through: a plain start stays fast.
        var inventory = spec.PciDevices is { Count: > 0 } || spec.UsbDevices is { Count: > 0 } ? HostDevices.Read() : new HostDeviceInventory();
        var errors = HostDevices.Check(spec, inventory);
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors, "The VM's host devices are not available on this host.");
    }

    /// <summary>Starts the VM's QEMU and waits until QMP reports it; "already running" is success.</summary>
    public async Task StartAsync(StoredVm stored, CancellationToken cancellationToken)
    {
        var vmId = stored.VmId;
        if (MonitorOf(vmId) is { } running)
        {
            if (running.Status == VmStatus.Paused && Defaults.Apply(stored.Spec).PowerState == "running")
                await ResumeAsync(vmId, cancellationToken);
            return;
        }
        VmClones.RefuseStart(stored);
        var clock = Stopwatch.StartNew();
        var spec = Defaults.Apply(stored.Spec);
        RequireServices(spec);
        RequireHostDevices(spec);
        Admit(vmId, spec);
        try
        {
            await LaunchAsync(vmId, stored.Spec, spec, clock, cancellationToken);
        }
        finally
        {
            lock (_admission)
                _reservedMib.Remove(vmId);
        }
    }

    private async Task LaunchAsync(long vmId, VmSpec userSpec, VmSpec spec, Stopwatch clock, CancellationToken cancellationToken, bool incoming = false)
    {
        var paths = await ResolvePathsAsync(vmId, spec, cancellationToken);
        var accelerator = AcceleratorFor(spec);
        // The builder validates what the user set and applies the defaults itself: an effective spec would
        // carry inline-only defaults (format, pool) onto volume disks and fail the cross-field rules.
        var argv = QemuCommand.Build(userSpec, facts, paths);
        if (incoming)
            argv = QemuCommand.WithIncoming(argv); // a migration target: QEMU waits for the source's state

        PrepareRunDir(paths);
        var qemuLog = QemuLogPath(vmId);
        var logOffset = File.Exists(qemuLog) ? new FileInfo(qemuLog).Length : 0;
        await VirtiofsDaemons.StartAsync(runner, spec, paths, qemuLog, cancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(paths.RunDir, "spec.json"), VmStore.Serialize(spec), cancellationToken);
        if (Swtpm is { } swtpm)
        {
            try
            {
                await swtpm.StartAsync(vmId, spec, paths.RunDir, cancellationToken); // before QEMU, which connects to it
            }
            catch
            {
                await CleanupAsync(vmId, spec);
                throw;
            }
        }
        int pid;
        try
        {
            pid = runner.SpawnDetached(argv, qemuLog);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            await CleanupAsync(vmId, spec);
            throw AgentProblemException.HostCommand($"Cannot start QEMU for VM {vmId}: {e.Message}");
        }
        var startedAt = DateTimeOffset.UtcNow;
        WriteRunRecord(paths.RunDir, new RunRecord(pid, ProcessTable.ReadStartTime(pid), startedAt, accelerator));

        VmMonitor? monitor;
        try
        {
            monitor = await VmMonitor.AttachAsync(vmId, pid, paths.QmpSocket, spec, startedAt, accelerator, QmpStartTimeout, logger, cancellationToken);
        }
        catch
        {
            await KillAndCleanupAsync(vmId, pid, spec);
            throw;
        }
        if (monitor is null)
        {
            await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2));
            ProcessTable.TakeExit(pid);
            await CleanupAsync(vmId, spec);
            throw QemuFailed(vmId, HelperProcessFiles.ReadTail(qemuLog, logOffset, maxBytes: 4096));
        }
        if (monitor.Status == VmStatus.Unresponsive)
        {
            await monitor.DisposeAsync();
            await KillAndCleanupAsync(vmId, pid, spec);
            throw AgentProblemException.HostCommand($"QEMU for VM {vmId} started but did not answer on QMP within {QmpStartTimeout.TotalSeconds} s.");
        }
        await ApplyCgroupAtStartAsync(monitor, vmId, pid, spec);
        _monitors[vmId] = monitor;
        _lastStatus.TryRemove(vmId, out _);
        _ = WhenExitedAsync(monitor);
        await PostStartAsync(monitor, userSpec, cancellationToken);
        if (spec.PowerState == "paused" && !incoming)
            await SuspendAsync(vmId, cancellationToken);
        Log.VmStarted(logger, vmId, pid, accelerator, clock.ElapsedMilliseconds);
    }

    /// <summary>Stops QEMU: QMP <c>quit</c>, then SIGKILL after a short grace. "Already stopped" is success.</summary>
    public async Task StopAsync(long vmId, CancellationToken cancellationToken)
    {
        if (MonitorOf(vmId) is not { } monitor)
            return;
        monitor.StopRequested = true;
        var how = "quit";
        try
        {
            await monitor.ExecuteAsync("quit", timeout: TimeSpan.FromSeconds(2), cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is IOException or TimeoutException or QmpException or AgentProblemException) { }
        if (!await ExitedWithin(monitor, QuitGrace))
        {
            how = "killed";
            // The PID is only signalled while /proc still shows this VM's QEMU (PIDs get reused).
            if (IsOurQemu(monitor.Pid, monitor.QmpSocket))
                ProcessTable.Signal(monitor.Pid, Posix.SIGKILL);
            if (!await ExitedWithin(monitor, TimeSpan.FromSeconds(5)))
                throw AgentProblemException.HostCommand($"QEMU pid {monitor.Pid} of VM {vmId} did not exit after SIGKILL.");
        }
        await ForgetAsync(vmId, monitor, VmStatus.Stopped);
        Log.VmStopped(logger, vmId, how);
    }

    /// <summary>
    /// Asks the guest to power off: through its guest agent (<c>guest-shutdown</c>) when the VM has the channel, the agent
    /// is meant for shutdown and answers, otherwise the ACPI power button. Then waits up to <paramref name="timeout"/>; after
    /// that a forced stop when <paramref name="force"/>, otherwise 409. "Already stopped" is success.
    /// </summary>
    public async Task ShutdownAsync(long vmId, TimeSpan timeout, bool force, CancellationToken cancellationToken)
    {
        if (MonitorOf(vmId) is not { } monitor)
            return;
        var how = "guest shutdown (ACPI)";
        if (await TryGuestAgentShutdownAsync(vmId, monitor, cancellationToken))
        {
            how = "guest shutdown (guest agent)";
        }
        else
        {
            try
            {
                await monitor.ExecuteAsync("system_powerdown", cancellationToken: cancellationToken);
            }
            catch (Exception e) when (e is IOException or TimeoutException or QmpException or AgentProblemException) { }
        }
        if (await ExitedWithin(monitor, timeout))
        {
            await ForgetAsync(vmId, monitor, VmStatus.Stopped);
            Log.VmStopped(logger, vmId, how);
            return;
        }
        if (!force)
            throw AgentProblemException.InvalidState($"VM {vmId} did not shut down within {timeout.TotalSeconds:0.#} s (the guest may ignore ACPI); use force=true or stop.");
        await StopAsync(vmId, cancellationToken);
    }

    private async Task<bool> TryGuestAgentShutdownAsync(long vmId, VmMonitor monitor, CancellationToken cancellationToken)
    {
        // The channel exists only if the VM started with it; whether to use it is a live setting, so it comes from the stored spec.
        if (monitor.StartedSpec.Agent?.Enabled != true || monitor.Status != VmStatus.Running)
            return false;
        if (store.Find(vmId) is { } stored && stored.Spec.Agent?.UseForShutdown == false)
            return false;
        return services.GetService<GuestAgent.GuestAgents>() is { } agents && await agents.TryShutdownAsync(vmId, cancellationToken);
    }

    /// <summary>Pauses the guest (QMP stop).</summary>
    public Task SuspendAsync(long vmId, CancellationToken cancellationToken) => PowerCommandAsync(vmId, "stop", VmStatus.Paused, cancellationToken);

    /// <summary>Resumes a paused guest (QMP cont); also continues after an I/O error once space is freed.</summary>
    public Task ResumeAsync(long vmId, CancellationToken cancellationToken) => PowerCommandAsync(vmId, "cont", VmStatus.Running, cancellationToken);

    /// <summary>Hard reset (QMP system_reset).</summary>
    public Task ResetAsync(long vmId, CancellationToken cancellationToken) => PowerCommandAsync(vmId, "system_reset", null, cancellationToken);

    private async Task PowerCommandAsync(long vmId, string command, string? expected, CancellationToken cancellationToken)
    {
        var monitor = MonitorOf(vmId) ?? throw AgentProblemException.InvalidState($"VM {vmId} is not running.");
        if (expected is not null && monitor.Status == expected)
            return;
        try
        {
            await monitor.ExecuteAsync(command, cancellationToken: cancellationToken);
        }
        catch (QmpException e)
        {
            throw AgentProblemException.InvalidState($"VM {vmId}: {e.Description}");
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            throw AgentProblemException.HostCommand($"VM {vmId}: QEMU did not answer {command}: {e.Message}");
        }
        await monitor.RefreshStatusAsync(cancellationToken);
    }

    /// <summary>Updates what GET reports as pending after the stored spec changed.</summary>
    public void RecomputePending(StoredVm stored, IEnumerable<string> failedLive)
    {
        if (MonitorOf(stored.VmId) is not { } monitor)
            return;
        monitor.PendingChanges =
        [
            // The running spec follows every hot-plug, so a device entry that still differs was not plugged or unplugged.
            .. Changes.Classify(RunningForPending(monitor.StartedSpec, stored.Spec), stored.Spec).Where(c => c.Kind != UpdateKind.Live || IsDeviceEntry(c.Attribute)).Select(c => c.Attribute)
                .Concat(failedLive).Distinct(StringComparer.Ordinal),
        ];
    }

    private static bool IsDeviceEntry(string attribute) =>
        AttrPath.Parse(attribute).Steps is [{ Name: "disks" or "network_interfaces" or "usb_devices" }, _];

    /// <summary>Applies one live-kind change to the running QEMU (<see cref="ApplyLiveAsync"/> records it in the running spec).</summary>
    private async Task<bool> ApplyLiveCoreAsync(long vmId, string attribute, VmSpec before, VmSpec after, CancellationToken cancellationToken)
    {
        if (MonitorOf(vmId) is not { } monitor)
            return false;
        var path = AttrPath.Parse(attribute);
        var steps = path.Steps;
        var top = steps[0].Name;
        try
        {
            if ((await ApplyCpuMemoryLiveAsync(monitor, vmId, attribute, after, cancellationToken) ?? await ApplyDeviceLiveAsync(monitor, vmId, attribute, after, cancellationToken)) is { } handled)
                return handled;
            switch (top)
            {
                case "name" when after.CloudInit is { Hostname: null, MetaData: null }:
                    return await ApplySeedAsync(monitor, vmId, after, cancellationToken); // the name is the guest's host name
                case "name" or "description" or "tags" or "protection" or "power_state" or "hotplug" or "migration" or "autostart" or "wait_for_ip":
                    return true; // metadata, enforced by the caller, or a policy read from the stored spec
                case "disks" or "network_interfaces" when steps.Count == 2:
                    return await HotplugAsync(monitor, vmId, top, steps[1].Name!, after, cancellationToken);
                case "disks" when steps.Count == 3 && QemuCommand.ThrottleAttributes.Contains(steps[2].Name!):
                    if (monitor.StartedSpec.Disks?.ContainsKey(steps[1].Name!) != true || after.Disks?.ContainsKey(steps[1].Name!) != true)
                        return false;
                    await ExecuteAsync(monitor, QemuCommand.ThrottleCommand(after, steps[1].Name!), cancellationToken);
                    return true;
                case "disks" when steps.Count == 3 && steps[2].Name == "size_gib":
                    return await ResizeDiskAsync(monitor, vmId, steps[1].Name!, after, cancellationToken);
                case "network_interfaces" when steps.Count >= 3 && TapAttributes.Contains(steps[2].Name!):
                    return await ApplyTapSettingsAsync(monitor, vmId, steps[1].Name!, after, cancellationToken);
                case "network_interfaces" when steps.Count == 3 && steps[2].Name == "link_up":
                    var up = Defaults.Apply(after).NetworkInterfaces![steps[1].Name!].LinkUp ?? true;
                    await monitor.ExecuteAsync("set_link", new JsonObject { ["name"] = steps[1].Name, ["up"] = up }, cancellationToken: cancellationToken);
                    return true;
                case "cloud_init" when steps.Count >= 2 && steps[1].Name != "slot":
                    return await ApplySeedAsync(monitor, vmId, after, cancellationToken);
                case "cdroms" when steps.Count == 3 && steps[2].Name == "volume_id":
                    return await ChangeMediumAsync(monitor, vmId, steps[1].Name!, after, cancellationToken);
                case "memory" when attribute == "memory.balloon.min_mib":
                    var effective = Defaults.Apply(after).Memory!;
                    var target = (effective.Balloon?.MinMib ?? effective.SizeMib!.Value) * 1024 * 1024;
                    await monitor.ExecuteAsync("balloon", new JsonObject { ["value"] = target }, cancellationToken: cancellationToken);
                    return true;
                default:
                    return false;
            }
        }
        catch (Exception e) when (e is QmpException or IOException or TimeoutException or AgentProblemException)
        {
            Log.LiveChangeFailed(logger, vmId, attribute, e.Message);
            return false;
        }
    }

    private async Task<bool> ResizeDiskAsync(VmMonitor monitor, long vmId, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        if (Storage is not { } storage || Defaults.Apply(after).Disks?.GetValueOrDefault(slot) is not { SizeGib: { } gib, VolumeId: null })
            return false;
        var (disks, _) = await storage.ResolveAsync(vmId, Defaults.Apply(after), cancellationToken);
        if (!disks.TryGetValue(slot, out var file))
            return false;
        var grown = await GrowImageAsync(monitor, file.Path, gib * 1024 * 1024 * 1024, cancellationToken);
        if (grown && monitor.StartedSpec.Agent?.Enabled == true && Defaults.Apply(after).Agent?.FstrimClonedDisks == true
            && services.GetService<GuestAgent.GuestAgents>() is { } agents)
            _ = TrimInBackgroundAsync(agents, vmId); // best effort; an update never waits for the guest
        return grown;
    }

    private async Task TrimInBackgroundAsync(GuestAgent.GuestAgents agents, long vmId)
    {
        try
        {
            await agents.TrimAsync(vmId, _disposing.Token);
            Log.GuestTrimmed(logger, vmId);
        }
        catch (Exception e) when (e is TimeoutException or IOException or GuestAgent.QgaException or OperationCanceledException)
        {
            Log.GuestTrimFailed(logger, vmId, e.Message);
        }
    }

    /// <summary>Grows a standalone volume through the running VM that holds it (QEMU has the image open and locked).</summary>
    public async Task<bool> TryGrowAsync(string volumeId, string path, long sizeBytes, CancellationToken cancellationToken)
    {
        foreach (var (vmId, _, _) in store.VolumeUses().Where(u => u.VolumeId == volumeId))
            if (MonitorOf(vmId) is { } monitor && await GrowImageAsync(monitor, path, sizeBytes, cancellationToken))
                return true;
        return false;
    }

    private static async Task<bool> GrowImageAsync(VmMonitor monitor, string path, long sizeBytes, CancellationToken cancellationToken)
    {
        // The builder's node names are its own business: find the format node over the image file it opened.
        var nodes = await monitor.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken: cancellationToken) as JsonArray;
        var node = nodes?.OfType<JsonObject>().FirstOrDefault(n => n["image"]?["filename"]?.GetValue<string>() == path && n["drv"]?.GetValue<string>() is not ("file" or null));
        if (node?["node-name"]?.GetValue<string>() is not { } nodeName)
            return false;
        await monitor.ExecuteAsync("block_resize", new JsonObject { ["node-name"] = nodeName, ["size"] = sizeBytes }, cancellationToken: cancellationToken);
        return true;
    }

    /// <summary>
    /// A cloud-init change on a running VM: regenerate the seed, swap the medium in the drive QEMU started with,
    /// then, by <c>on_change</c>, reset the guest (reboot; reprovision has a new instance-id as well). The VM keeps
    /// its QEMU. Unchanged content (several attributes of one update) does nothing the second time.
    /// </summary>
    private async Task<bool> ApplySeedAsync(VmMonitor monitor, long vmId, VmSpec after, CancellationToken cancellationToken)
    {
        if (Seeds is not { } seeds || CloudInitSpec.EffectiveSlot(monitor.StartedSpec) is not { } slot)
            return false; // no seed drive in the running QEMU: the seed arrives with the next start
        var effective = Defaults.Apply(after);
        if (effective.CloudInit is null)
            return false;
        var result = await seeds.EnsureAsync(vmId, effective, cancellationToken);
        if (!result.Changed)
            return true;
        await SwapMediumAsync(monitor, slot, result.Iso, cancellationToken);
        CloudInitSeeds.DeleteOld(result.Previous);
        var onChange = effective.CloudInit.OnChange;
        if (onChange is "reboot" or "reprovision")
            await monitor.ExecuteAsync("system_reset", cancellationToken: cancellationToken);
        CloudInitLog.SeedSwapped(logger, vmId, slot, onChange ?? "none");
        return true;
    }

    private static async Task SwapMediumAsync(VmMonitor monitor, string slot, string iso, CancellationToken cancellationToken)
    {
        var change = new JsonObject { ["id"] = slot, ["filename"] = iso, ["format"] = "raw", ["read-only-mode"] = "read-only" };
        try
        {
            await monitor.ExecuteAsync("blockdev-change-medium", change, cancellationToken: cancellationToken);
        }
        catch (QmpException e) when (e.Description.Contains("locked", StringComparison.OrdinalIgnoreCase))
        {
            // The guest holds the tray locked (the seed is mounted): open it by force, as an eject button would.
            await monitor.ExecuteAsync("blockdev-open-tray", new JsonObject { ["id"] = slot, ["force"] = true }, cancellationToken: cancellationToken);
            await monitor.ExecuteAsync("blockdev-change-medium", (JsonObject)change.DeepClone(), cancellationToken: cancellationToken);
        }
    }

    private async Task<bool> ChangeMediumAsync(VmMonitor monitor, long vmId, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        if (Storage is not { } storage)
            return false;
        var (_, cdroms) = await storage.ResolveAsync(vmId, Defaults.Apply(after), cancellationToken);
        // Devices are named by slot (qdev id), the convention the builder shares with Proxmox.
        if (cdroms.GetValueOrDefault(slot) is { } iso)
            await monitor.ExecuteAsync("blockdev-change-medium", new JsonObject { ["id"] = slot, ["filename"] = iso, ["format"] = "raw", ["read-only-mode"] = "read-only" }, cancellationToken: cancellationToken);
        else
            await monitor.ExecuteAsync("eject", new JsonObject { ["id"] = slot, ["force"] = true }, cancellationToken: cancellationToken);
        return true;
    }

    /// <summary>
    /// Finds QEMUs that outlived a previous agent and watches them again. A pidfile is only trusted when /proc shows
    /// a live (non-zombie) process whose command line names this VM's QMP socket and whose start time matches;
    /// adopted VMs are never restarted or killed.
    /// </summary>
    public async Task<int> AdoptAllAsync(CancellationToken cancellationToken)
    {
        var adopted = 0;
        await Parallel.ForEachAsync(store.All.ToList(), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (stored, ct) =>
        {
            if (await AdoptAsync(stored, ct))
                Interlocked.Increment(ref adopted);
        });
        return adopted;
    }

    private async Task<bool> AdoptAsync(StoredVm stored, CancellationToken cancellationToken)
    {
        var vmId = stored.VmId;
        var runDir = RunDirOf(vmId);
        var qmpSocket = Path.Combine(runDir, "qmp.sock");
        var record = ReadRunRecord(runDir);
        var pid = HelperProcessFiles.ReadPid(Path.Combine(runDir, "qemu.pid")) ?? record?.Pid;
        if (pid is null)
            return false;
        if (!ProcessTable.IsAlive(pid.Value) || !IsOurQemu(pid.Value, qmpSocket)
            || (record is { ProcStart: { } start } && record.Pid == pid && ProcessTable.ReadStartTime(pid.Value) != start))
        {
            Log.StalePidFile(logger, vmId, pid.Value);
            if (Swtpm is { } swtpm)
                await swtpm.StopAsync(vmId, runDir);
            TryDeleteRunDir(vmId, runDir);
            return false;
        }
        VmSpec startedSpec;
        try
        {
            startedSpec = VmStore.Deserialize(await File.ReadAllBytesAsync(Path.Combine(runDir, "spec.json"), cancellationToken));
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidDataException)
        {
            startedSpec = Defaults.Apply(stored.Spec);
        }
        var monitor = await VmMonitor.AttachAsync(vmId, pid.Value, qmpSocket, startedSpec, record?.StartedAt ?? DateTimeOffset.UtcNow,
            record?.Accelerator ?? AcceleratorFor(startedSpec), TimeSpan.FromSeconds(5), logger, cancellationToken);
        if (monitor is null)
            return false;
        _monitors[vmId] = monitor;
        await ReadBackRunningAsync(monitor, vmId, cancellationToken);
        RecomputePending(stored, []);
        _ = WhenExitedAsync(monitor);
        Log.VmAdopted(logger, vmId, pid.Value, monitor.Status);
        return true;
    }

    /// <summary>Removes what a VM's QEMU needed while it ran: taps and the run directory. Idempotent.</summary>
    public async Task CleanupAsync(long vmId, VmSpec spec)
    {
        if (Taps is { } taps)
        {
            // Also the NICs of the stored spec: one plugged live and not yet known to the running spec still has its tap.
            var nics = (spec.NetworkInterfaces ?? []).Concat(store.Find(vmId)?.Spec.NetworkInterfaces ?? [])
                .DistinctBy(n => n.Key).ToList();
            foreach (var (slot, nic) in nics)
            {
                if (nic.Bridge is null)
                    continue;
                try
                {
                    if (TapSettingsOf is { } tapSettings)
                        await tapSettings.RemoveAsync(TapName.For(vmId, slot), CancellationToken.None);
                    await taps.RemoveTapAsync(TapName.For(vmId, slot), CancellationToken.None);
                }
                catch (Exception e) when (e is AgentProblemException or IOException) { Log.CleanupFailed(logger, vmId, TapName.For(vmId, slot), e.Message); }
            }
        }
        if (Swtpm is { } swtpm)
            await swtpm.StopAsync(vmId, RunDirOf(vmId)); // after QEMU: it exits with it, or is stopped by PID
        await VirtiofsDaemons.StopAsync(RunDirOf(vmId));
        TryDeleteRunDir(vmId, RunDirOf(vmId));
        RemoveCgroup(vmId);
    }

    /// <summary>Deletes the VM's logs and EFI variable store (on delete).</summary>
    public void RemoveFiles(long vmId)
    {
        foreach (var file in new[] { SerialLogPath(vmId), QemuLogPath(vmId), store.EfiVarsPath(vmId) })
            DeleteIfExists(file);
        Seeds?.Remove(vmId);
        Swtpm?.RemoveState(vmId);
        _lastStatus.TryRemove(vmId, out _);
    }

    /// <summary>The VM's run directory: <c>&lt;run-dir&gt;/&lt;vm_id&gt;</c>.</summary>
    public string RunDirOf(long vmId) => Path.Combine(options.RunDir, vmId.ToString(CultureInfo.InvariantCulture));

    /// <summary>Serial console log.</summary>
    public string SerialLogPath(long vmId) => Path.Combine(options.DataDir, "logs", $"{vmId}.serial.log");

    /// <summary>QEMU's own stdout/stderr.</summary>
    public string QemuLogPath(long vmId) => Path.Combine(options.DataDir, "logs", $"{vmId}.qemu.log");

    /// <summary>Effective MACs per NIC slot: the user's, or generated from the VM ID and slot.</summary>
    public static IEnumerable<KeyValuePair<string, string>> MacsFor(long vmId, VmSpec spec) =>
        (spec.NetworkInterfaces ?? []).Select(n => KeyValuePair.Create(n.Key, n.Value.Mac?.ToLowerInvariant() ?? MacAddress.Generate(vmId, n.Key)));

    private void Admit(long vmId, VmSpec spec)
    {
        var cpu = spec.Cpu!;
        var vcpus = (long)cpu.Sockets!.Value * cpu.Cores!.Value * cpu.Threads!.Value;
        if (vcpus > facts.CpuCores)
            throw new AgentProblemException(422, ProblemTypes.Admission, "Not enough host CPUs",
                $"VM {vmId} needs {vcpus} vCPUs (sockets {cpu.Sockets} × cores {cpu.Cores} × threads {cpu.Threads}); the host has {facts.CpuCores}.",
                [new ProblemError("cpu", $"{vcpus} vCPUs exceed the host's {facts.CpuCores} CPUs.")]);
        var memory = spec.Memory!.SizeMib!.Value;
        // Starts run in parallel (one lock per VM): memory is reserved until the new QEMU is counted as running.
        lock (_admission)
        {
            var inUse = _monitors.Values.Where(m => !m.HasExited && m.VmId != vmId && !_reservedMib.ContainsKey(m.VmId)).Sum(m => m.StartedSpec.Memory?.SizeMib ?? 0)
                + _reservedMib.Where(r => r.Key != vmId).Sum(r => r.Value);
            if (inUse + memory <= facts.MemoryMib - HostReserveMib)
            {
                _reservedMib[vmId] = memory;
                return;
            }
            throw new AgentProblemException(422, ProblemTypes.Admission, "Not enough host memory",
                $"VM {vmId} needs {memory} MiB; running VMs use {inUse} MiB of the host's {facts.MemoryMib} MiB and {HostReserveMib} MiB stay reserved for the host, so {Math.Max(0, facts.MemoryMib - HostReserveMib - inUse)} MiB are free.",
                [new ProblemError("memory.size_mib", $"{memory} MiB do not fit: {Math.Max(0, facts.MemoryMib - HostReserveMib - inUse)} MiB free.")]);
        }
    }

    private async Task<VmPaths> ResolvePathsAsync(long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var runDir = RunDirOf(vmId);
        Directory.CreateDirectory(Path.Combine(options.DataDir, "logs"));
        IReadOnlyDictionary<string, DiskFile> disks = new Dictionary<string, DiskFile>();
        IReadOnlyDictionary<string, string?> cdroms = new Dictionary<string, string?>();
        string? efiVars = null;
        if (Storage is { } storage && (spec.Disks is { Count: > 0 } || spec.Cdroms is { Count: > 0 } || spec.Firmware?.Type == "uefi"))
        {
            await storage.EnsureInlineDisksAsync(vmId, spec, cancellationToken);
            (disks, cdroms) = await storage.ResolveAsync(vmId, spec, cancellationToken);
            if (spec.Firmware?.Type == "uefi")
            {
                efiVars = store.EfiVarsPath(vmId);
                await storage.EnsureEfiVarsAsync(spec, facts, efiVars, cancellationToken);
            }
        }
        string? seed = null;
        if (Seeds is { } seeds)
        {
            if (spec.CloudInit is not null)
            {
                var result = await seeds.EnsureAsync(vmId, spec, cancellationToken);
                CloudInitSeeds.DeleteOld(result.Previous);
                seed = result.Iso;
            }
            else
            {
                seeds.Remove(vmId); // cloud_init was removed while the VM ran
            }
        }
        var taps = new Dictionary<string, string>();
        foreach (var (slot, nic) in spec.NetworkInterfaces ?? [])
        {
            if (nic.Bridge is null)
                continue;
            var tap = TapName.For(vmId, slot);
            await Taps!.EnsureTapAsync(tap, nic.Bridge, nic.Mtu, cancellationToken);
            if (TapSettingsOf is { } tapSettings)
                await tapSettings.ApplyAsync(tap, nic, NicPath(slot), cancellationToken);
            taps[slot] = tap;
        }
        return new VmPaths
        {
            RunDir = runDir,
            QmpSocket = Path.Combine(runDir, "qmp.sock"),
            PidFile = Path.Combine(runDir, "qemu.pid"),
            SerialLog = SerialLogPath(vmId),
            EfiVars = efiVars,
            TpmSocket = spec.Tpm is null ? null : QemuCommand.TpmSocket(runDir),
            CloudInitSeed = seed,
            Disks = disks,
            Cdroms = cdroms,
            Taps = taps,
            Macs = MacsFor(vmId, spec).ToDictionary(),
            PciFunctions = spec.PciDevices is { Count: > 0 } ? HostDevices.Functions(spec, HostDevices.Read()) : new Dictionary<string, IReadOnlyList<string>>(),
        };
    }

    /// <summary>File.Delete, also when the directory is missing.</summary>
    public static void DeleteIfExists(string path)
    {
        try { File.Delete(path); }
        catch (DirectoryNotFoundException) { }
    }

    private static void PrepareRunDir(VmPaths paths)
    {
        Directory.CreateDirectory(paths.RunDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Left behind by a killed QEMU; QEMU re-binds the socket, but a stale pidfile must not be read as the new one.
        File.Delete(paths.PidFile);
        File.Delete(paths.QmpSocket);
    }

    private async Task WhenExitedAsync(VmMonitor monitor)
    {
        var final = await monitor.Exited;
        if (monitor.StopRequested || _disposing.IsCancellationRequested)
            return;
        // QEMU ended on its own (crash, kill -9 or guest power-off): clean up under the VM's lock, unless a new start replaced it.
        try
        {
            using var held = await locks.AcquireAsync(monitor.VmId, _disposing.Token);
            if (_monitors.TryGetValue(monitor.VmId, out var current) && ReferenceEquals(current, monitor))
                await ForgetAsync(monitor.VmId, monitor, final);
        }
        catch (Exception e) when (e is OperationCanceledException or AgentProblemException)
        {
            _lastStatus[monitor.VmId] = final;
        }
    }

    private async Task ForgetAsync(long vmId, VmMonitor monitor, string finalStatus)
    {
        _lastStatus[vmId] = finalStatus;
        _monitors.TryRemove(KeyValuePair.Create(vmId, monitor));
        await monitor.DisposeAsync();
        await CleanupAsync(vmId, monitor.StartedSpec);
    }

    private async Task KillAndCleanupAsync(long vmId, int pid, VmSpec spec)
    {
        if (ProcessTable.IsAlive(pid))
            ProcessTable.Signal(pid, Posix.SIGKILL);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (ProcessTable.IsAlive(pid) && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2));
        ProcessTable.TakeExit(pid);
        await CleanupAsync(vmId, spec);
    }

    private static async Task<bool> ExitedWithin(VmMonitor monitor, TimeSpan timeout)
    {
        try
        {
            await monitor.Exited.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static bool IsOurQemu(int pid, string qmpSocket) =>
        ProcessTable.ReadCommandLine(pid).Any(arg => arg.Contains(qmpSocket + ",", StringComparison.Ordinal) || arg.EndsWith(qmpSocket, StringComparison.Ordinal));

    private static void WriteRunRecord(string runDir, RunRecord record) =>
        Durable.WriteAtomically(Path.Combine(runDir, "run.json"), JsonSerializer.SerializeToUtf8Bytes(record, RunJsonContext.Default.RunRecord));

    private static RunRecord? ReadRunRecord(string runDir)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(runDir, "run.json")), RunJsonContext.Default.RunRecord);
        }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    private void TryDeleteRunDir(long vmId, string runDir)
    {
        try
        {
            if (Directory.Exists(runDir))
                Directory.Delete(runDir, recursive: true);
        }
        catch (IOException e)
        {
            Log.CleanupFailed(logger, vmId, runDir, e.Message);
        }
    }

    private static AgentProblemException QemuFailed(long vmId, string log)
    {
        var message = log.Length == 0 ? "QEMU exited at once without a message." : log;
        // QEMU's image locking is the safety net for a disk another process uses (research §3.2 #1).
        if (message.Contains("Failed to get \"write\" lock", StringComparison.Ordinal) || message.Contains("Failed to get shared \"write\" lock", StringComparison.Ordinal))
            return AgentProblemException.Conflict($"VM {vmId} cannot start: a disk is in use by another process. QEMU said: {message}");
        return AgentProblemException.HostCommand($"QEMU for VM {vmId} exited during start: {message}");
    }

    /// <summary>Stops watching (QEMUs keep running: VMs outlive the agent).</summary>
    public async ValueTask DisposeAsync()
    {
        await _disposing.CancelAsync();
        foreach (var monitor in _monitors.Values)
            await monitor.DisposeAsync();
        _monitors.Clear();
    }
}
