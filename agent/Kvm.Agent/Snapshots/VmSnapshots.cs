using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Agent.GuestAgent;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Agent.Vms;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Snapshots;

/// <summary>The answer to a create: the snapshot, and whether this request made it (false: it existed already).</summary>
public sealed record SnapshotOutcome(Snapshot Snapshot, bool Created);

/// <summary>
/// VM snapshots: internal qcow2 snapshots of every writable disk of a VM, taken together, with the memory state when asked.
/// A running VM is snapshotted through QMP (<c>snapshot-save</c> with memory; a <c>transaction</c> of
/// <c>blockdev-snapshot-internal-sync</c> without, the guest's file systems frozen when it has the guest agent); a stopped VM
/// with <c>qemu-img snapshot</c>. Every operation runs under the VM's lock.
/// </summary>
public sealed partial class VmSnapshots(
    VmStore store,
    VmRuntime runtime,
    VmLocks locks,
    SnapshotBook book,
    SnapshotFiles files,
    ICommandRunner runner,
    ILogger<VmSnapshots> logger,
    IServiceProvider services)
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(30);
    private static readonly TimeSpan ImgTimeout = TimeSpan.FromMinutes(10);

    private IVmStorage? Storage => services.GetService<IVmStorage>();
    private string QemuImgBinary => services.GetService<StorageOptions>()?.QemuImgBinary ?? "qemu-img";

    /// <summary>The VM's snapshots, oldest first.</summary>
    public List<Snapshot> List(long vmId)
    {
        store.Get(vmId);
        return [.. book.Load(vmId).Snapshots.Where(s => s.State == SnapshotRecord.Ready).OrderBy(s => s.CreatedAt).Select(s => Describe(vmId, s))];
    }

    /// <summary>One snapshot, or 404.</summary>
    public Snapshot Get(long vmId, string name)
    {
        store.Get(vmId);
        return Describe(vmId, FindReady(book.Load(vmId), vmId, name));
    }

    /// <summary>Takes a snapshot. The same name with the same <c>include_memory</c> returns the existing one (idempotent).</summary>
    public async Task<SnapshotOutcome> CreateAsync(long vmId, SnapshotSpec spec, CancellationToken cancellationToken)
    {
        Check(vmId, spec);
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        var stored = store.Get(vmId);
        if (stored.Spec.Template == true)
            throw AgentProblemException.InvalidState($"VM {vmId} is a template: its disks are read-only bases for clones and take no snapshots.");
        var snapshots = book.Load(vmId);
        var name = spec.Name!;
        var includeMemory = spec.IncludeMemory == true;
        if (snapshots.Snapshots.FirstOrDefault(s => s.Name == name) is { } existing)
        {
            if (existing.State == SnapshotRecord.Ready)
            {
                if (existing.WithMemory != includeMemory)
                    throw AgentProblemException.Conflict($"VM {vmId} has a snapshot \"{name}\" already, with include_memory = {(existing.WithMemory ? "true" : "false")}.");
                return new SnapshotOutcome(Describe(vmId, existing), false);
            }
            // Left half-made by a crash: remove what it made, then take it again.
            await RemoveFromImagesAsync(vmId, existing, cancellationToken);
            files.Delete(vmId, existing.Name);
            snapshots.Snapshots.Remove(existing);
            book.Save(vmId, snapshots);
        }

        var disks = await SnapshotDisksAsync(vmId, stored.Spec, cancellationToken);
        var status = runtime.StatusOf(vmId);
        var monitor = runtime.MonitorOf(vmId);
        if (includeMemory && monitor is null)
            throw AgentProblemException.InvalidState($"include_memory needs VM {vmId} running or paused; it is {status}. Start it, or take a disks-only snapshot.");
        if (monitor is not null && status is not (VmStatus.Running or VmStatus.Paused))
            throw AgentProblemException.InvalidState($"VM {vmId} is {status}; a snapshot needs it running, paused or stopped.");
        foreach (var (slot, disk) in disks)
        {
            if ((await ListImageSnapshotsAsync(disk.Path, cancellationToken)).Any(s => s.Name == name))
                throw AgentProblemException.Conflict($"The image of disk {slot} of VM {vmId} ({Path.GetFileName(disk.Path)}) already holds a snapshot named \"{name}\" that the agent did not make; delete it with qemu-img or use another name.");
        }

        var record = new SnapshotRecord
        {
            Name = name,
            Description = spec.Description,
            IncludeMemory = spec.IncludeMemory,
            CreatedAt = DateTimeOffset.UtcNow,
            Parent = snapshots.Current is { } current && snapshots.Snapshots.Any(s => s.Name == current && s.State == SnapshotRecord.Ready) ? current : null,
            VmStatus = monitor is null ? VmStatus.Stopped : status,
            Disks = new SortedDictionary<string, SnapshotDisk>(disks, StringComparer.Ordinal),
            VmStateDisk = includeMemory ? disks.Keys.First() : null,
        };
        // The record goes first, so a crash between the images and the metadata leaves something the next call cleans up.
        snapshots.Snapshots.Add(record);
        book.Save(vmId, snapshots);
        try
        {
            if (monitor is null)
            {
                await CreateOfflineAsync(vmId, record, cancellationToken);
                files.Save(vmId, stored.Spec, record);
            }
            else if (includeMemory)
            {
                // The TPM state and EFI variables are copied while the guest is paused, then QEMU saves the same moment.
                await WhilePausedAsync(monitor, vmId, files.HasAny(vmId, stored.Spec), async () =>
                {
                    files.Save(vmId, stored.Spec, record);
                    await RunJobAsync(monitor, "snapshot-save", vmId, new JsonObject
                    {
                        ["tag"] = name,
                        ["vmstate"] = QemuCommand.DriveNode(record.VmStateDisk!),
                        ["devices"] = Nodes(record),
                    }, cancellationToken);
                }, cancellationToken);
            }
            else
                record.FsFrozen = await CreateLiveDisksOnlyAsync(vmId, stored.Spec, monitor, record, cancellationToken);
        }
        catch
        {
            try
            {
                await RemoveFromImagesAsync(vmId, record, CancellationToken.None);
                files.Delete(vmId, name);
            }
            catch (Exception e) when (e is AgentProblemException or IOException or TimeoutException or QmpException or UnauthorizedAccessException) { LogCleanupFailed(logger, vmId, name, e.Message); }
            snapshots.Snapshots.Remove(record);
            book.Save(vmId, snapshots);
            throw;
        }
        if (record.VmStateDisk is { } stateSlot)
            record.VmStateBytes = (await ListImageSnapshotsAsync(record.Disks[stateSlot].Path, cancellationToken)).FirstOrDefault(s => s.Name == name)?.VmStateSize ?? 0;
        record.State = SnapshotRecord.Ready;
        snapshots.Current = name;
        book.Save(vmId, snapshots);
        LogCreated(logger, vmId, name, record.WithMemory, record.VmStatus!, record.FsFrozen);
        return new SnapshotOutcome(Describe(vmId, record), true);
    }

    /// <summary>Changes what can change in place (the description); the rest is create-only.</summary>
    public async Task<Snapshot> UpdateAsync(long vmId, string name, SnapshotSpec spec, CancellationToken cancellationToken)
    {
        spec.Name ??= name;
        Check(vmId, spec);
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        store.Get(vmId);
        var snapshots = book.Load(vmId);
        var record = FindReady(snapshots, vmId, name);
        var replace = new List<ProblemError>();
        if (spec.Name != name)
            replace.Add(new ProblemError("name", "can only be set at create; changing it makes a new snapshot."));
        if ((spec.IncludeMemory == true) != record.WithMemory)
            replace.Add(new ProblemError("include_memory", "can only be set at create; changing it makes a new snapshot."));
        if (replace.Count > 0)
            throw new AgentProblemException(409, ProblemTypes.RequiresReplacement, "Requires replacement",
                $"These settings of snapshot \"{name}\" can only be set when it is taken: {string.Join(", ", replace.Select(r => r.Attribute))}.", replace);
        if (record.Description != spec.Description)
        {
            record.Description = spec.Description;
            book.Save(vmId, snapshots);
        }
        return Describe(vmId, record);
    }

    /// <summary>Deletes a snapshot from every image that holds it; a snapshot that does not exist is success.</summary>
    public async Task DeleteAsync(long vmId, string name, CancellationToken cancellationToken)
    {
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        store.Get(vmId);
        var snapshots = book.Load(vmId);
        if (snapshots.Snapshots.FirstOrDefault(s => s.Name == name) is not { } record)
            return;
        await RemoveFromImagesAsync(vmId, record, cancellationToken);
        files.Delete(vmId, name);
        snapshots.Snapshots.Remove(record);
        foreach (var child in snapshots.Snapshots.Where(s => s.Parent == name))
            child.Parent = record.Parent;
        if (snapshots.Current == name)
            snapshots.Current = record.Parent;
        book.Save(vmId, snapshots);
        LogDeleted(logger, vmId, name);
    }

    /// <summary>
    /// Returns the VM to a snapshot. With memory: QEMU loads it (the VM is started first when stopped) and runs on from the
    /// saved moment. Disks only: the VM is stopped (hard, as Proxmox does), its images reverted with <c>qemu-img snapshot -a</c>,
    /// and started again when <paramref name="start"/> says so (default: when it was running).
    /// </summary>
    public async Task<Vm> RollbackAsync(long vmId, string name, bool? start, CancellationToken cancellationToken)
    {
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        var stored = store.Get(vmId);
        var snapshots = book.Load(vmId);
        var record = FindReady(snapshots, vmId, name);
        var disks = await SnapshotDisksAsync(vmId, stored.Spec, cancellationToken, requireQcow2: false);
        foreach (var (slot, disk) in record.Disks)
        {
            if (!disks.TryGetValue(slot, out var now) || now.Path != disk.Path)
                throw AgentProblemException.InvalidState($"Snapshot \"{name}\" holds disk {slot} ({Path.GetFileName(disk.Path)}), which VM {vmId} no longer has; it cannot be rolled back.");
        }
        SnapshotFiles.CheckFits(vmId, stored.Spec, record);
        var wasUp = runtime.IsUp(vmId);
        var withFiles = record.TpmState is not null || record.EfiVars is not null;
        if (record.WithMemory)
        {
            if (!wasUp)
            {
                // swtpm and the firmware start from the snapshot's TPM state and variables; QEMU then loads the saved moment.
                files.Restore(vmId, stored.Spec, record, qemuUp: false);
                await runtime.StartAsync(stored, cancellationToken);
            }
            var monitor = runtime.MonitorOf(vmId) ?? throw AgentProblemException.InvalidState($"VM {vmId} stopped during the rollback.");
            // snapshot-load hands the TPM state in the vmstate to the running swtpm and the flash contents to the firmware;
            // with the guest still paused the files on disk are made the snapshot's too, so a later cold start agrees.
            await WhilePausedAsync(monitor, vmId, withFiles, async () =>
            {
                await RunJobAsync(monitor, "snapshot-load", vmId, new JsonObject
                {
                    ["tag"] = name,
                    ["vmstate"] = QemuCommand.DriveNode(record.VmStateDisk!),
                    ["devices"] = Nodes(record),
                }, cancellationToken);
                files.Restore(vmId, stored.Spec, record, qemuUp: true);
            }, cancellationToken);
            if (start == false)
                await runtime.StopAsync(vmId, cancellationToken);
            else
                await monitor.RefreshStatusAsync(cancellationToken);
        }
        else
        {
            if (wasUp)
                await runtime.StopAsync(vmId, cancellationToken);
            foreach (var (slot, disk) in record.Disks)
                await QemuImgSnapshotAsync("-a", name, slot, disk, vmId, cancellationToken);
            files.Restore(vmId, stored.Spec, record, qemuUp: false);
            if (start ?? wasUp)
                await runtime.StartAsync(store.Get(vmId), cancellationToken);
        }
        snapshots.Current = name;
        book.Save(vmId, snapshots);
        LogRolledBack(logger, vmId, name, record.WithMemory);
        return runtime.Describe(store.Get(vmId));
    }

    /// <summary>
    /// Forgets the snapshots of a VM being deleted (the caller holds its lock and has stopped it). Inline disks take their
    /// snapshots with them; volumes outlive the VM, so its snapshots are deleted from them.
    /// </summary>
    public async Task ForgetVmAsync(long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var snapshots = book.Load(vmId);
        var volumeSlots = (spec.Disks ?? []).Where(d => d.Value.VolumeId is not null).Select(d => d.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var record in snapshots.Snapshots)
        {
            foreach (var (slot, disk) in record.Disks.Where(d => volumeSlots.Contains(d.Key)))
            {
                try { await QemuImgSnapshotAsync("-d", record.Name, slot, disk, vmId, cancellationToken, missingIsFine: true); }
                catch (AgentProblemException e) { LogCleanupFailed(logger, vmId, record.Name, e.Message); }
            }
        }
        files.DeleteAll(vmId);
        book.Remove(vmId);
    }

    private static void Check(long vmId, SnapshotSpec spec)
    {
        spec.VmId ??= vmId;
        var errors = Validator.Validate(spec).ToList();
        if (spec.VmId != vmId)
            errors.Add(new ValidationError("vm_id", $"is {spec.VmId}, but the request is for VM {vmId}."));
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
    }

    private static SnapshotRecord FindReady(SnapshotBookFile snapshots, long vmId, string name) =>
        snapshots.Snapshots.FirstOrDefault(s => s.Name == name && s.State == SnapshotRecord.Ready)
            ?? throw AgentProblemException.NotFound($"VM {vmId} has no snapshot \"{name}\".");

    private static Snapshot Describe(long vmId, SnapshotRecord record) => new()
    {
        VmId = vmId,
        Name = record.Name,
        Description = record.Description,
        IncludeMemory = record.IncludeMemory,
        SnapshotId = $"{vmId}/{record.Name}",
        CreatedAt = record.CreatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        Parent = record.Parent,
        VmStatus = record.VmStatus,
        Disks = [.. record.Disks.Keys],
        VmStateBytes = record.VmStateBytes,
        FsFrozen = record.FsFrozen,
        TpmState = record.TpmVersion,
        EfiVars = record.EfiVars is not null,
    };

    private static JsonArray Nodes(SnapshotRecord record) => [.. record.Disks.Keys.Select(slot => (JsonNode)JsonValue.Create(QemuCommand.DriveNode(slot)))];

    /// <summary>
    /// The disks a snapshot of the VM holds: every disk that is not read-only. A disk whose format cannot hold internal snapshots
    /// (raw, vmdk) refuses the snapshot, naming the disk.
    /// </summary>
    private async Task<SortedDictionary<string, SnapshotDisk>> SnapshotDisksAsync(long vmId, VmSpec spec, CancellationToken cancellationToken, bool requireQcow2 = true)
    {
        var storage = Storage ?? throw AgentProblemException.InvalidState("storage is not configured on this agent, so there is nothing to snapshot.");
        var effective = Defaults.Apply(spec);
        var (files, _) = await storage.ResolveAsync(vmId, spec, cancellationToken);
        var disks = new SortedDictionary<string, SnapshotDisk>(StringComparer.Ordinal);
        var refused = new List<string>();
        foreach (var (slot, file) in files)
        {
            if (effective.Disks?.GetValueOrDefault(slot)?.ReadOnly == true)
                continue;
            if (file.Format != "qcow2" && requireQcow2)
                refused.Add($"disk {slot} ({Path.GetFileName(file.Path)}) is {file.Format}");
            else
                disks[slot] = new SnapshotDisk { Path = file.Path, Format = file.Format };
        }
        if (refused.Count > 0)
            throw new AgentProblemException(409, ProblemTypes.InvalidState, "Disk cannot be snapshotted",
                $"VM {vmId} cannot be snapshotted: {string.Join("; ", refused)}. Snapshots live inside the disk images and need every writable disk in qcow2 " +
                "(make the disk read_only, or use a qcow2 disk).",
                [.. refused.Select(r => new ProblemError("vm_id", r + "; internal snapshots need qcow2."))]);
        if (disks.Count == 0 && requireQcow2)
            throw AgentProblemException.InvalidState($"VM {vmId} has no writable disk, so a snapshot would hold nothing.");
        return disks;
    }

    private async Task CreateOfflineAsync(long vmId, SnapshotRecord record, CancellationToken cancellationToken)
    {
        foreach (var (slot, disk) in record.Disks)
            await QemuImgSnapshotAsync("-c", record.Name, slot, disk, vmId, cancellationToken);
    }

    /// <summary>All disks in one QMP transaction (atomic across disks), inside a guest fs-freeze when the guest agent can do it.</summary>
    private async Task<bool> CreateLiveDisksOnlyAsync(long vmId, VmSpec spec, VmMonitor monitor, SnapshotRecord record, CancellationToken cancellationToken)
    {
        var frozen = false;
        var guest = services.GetService<GuestAgents>();
        if (guest is not null && monitor.StartedSpec.Agent?.Enabled == true && monitor.Status == VmStatus.Running)
        {
            try
            {
                await guest.FreezeAsync(vmId, cancellationToken);
                frozen = true;
            }
            catch (Exception e) when (e is TimeoutException or IOException or QgaException)
            {
                LogFreezeFailed(logger, vmId, e.Message);
                await ThawQuietlyAsync(guest, vmId);
            }
        }
        try
        {
            var actions = new JsonArray();
            foreach (var slot in record.Disks.Keys)
                actions.Add(new JsonObject
                {
                    ["type"] = "blockdev-snapshot-internal-sync",
                    ["data"] = new JsonObject { ["device"] = QemuCommand.DriveNode(slot), ["name"] = record.Name },
                });
            // With a TPM or EFI variables to copy, the guest is paused for the disks and the copy, so all show one moment.
            await WhilePausedAsync(monitor, vmId, files.HasAny(vmId, spec), async () =>
            {
                await QmpAsync(monitor, vmId, "transaction", new JsonObject { ["actions"] = actions }, cancellationToken);
                files.Save(vmId, spec, record);
            }, cancellationToken);
        }
        finally
        {
            if (frozen)
                await ThawQuietlyAsync(guest!, vmId);
        }
        return frozen;
    }

    /// <summary>
    /// Runs <paramref name="action"/> with the guest paused (QMP <c>stop</c>, then <c>cont</c>) when <paramref name="pause"/> and
    /// it is running: no vCPU runs, so neither the TPM nor the firmware's flash change meanwhile. A paused guest stays paused.
    /// </summary>
    private async Task WhilePausedAsync(VmMonitor monitor, long vmId, bool pause, Func<Task> action, CancellationToken cancellationToken)
    {
        var paused = false;
        if (pause && monitor.Status == VmStatus.Running)
        {
            await QmpAsync(monitor, vmId, "stop", null, cancellationToken);
            paused = true;
        }
        try
        {
            await action();
        }
        finally
        {
            if (paused)
            {
                try { await QmpAsync(monitor, vmId, "cont", null, CancellationToken.None); }
                catch (AgentProblemException e) { LogCleanupFailed(logger, vmId, "(resume)", e.Message); }
                try { await monitor.RefreshStatusAsync(CancellationToken.None); }
                catch (Exception e) when (e is IOException or TimeoutException or QmpException) { }
            }
        }
    }

    private async Task ThawQuietlyAsync(GuestAgents guest, long vmId)
    {
        try { await guest.ThawAsync(vmId, CancellationToken.None); }
        catch (Exception e) when (e is TimeoutException or IOException or QgaException) { LogFreezeFailed(logger, vmId, "thaw: " + e.Message); }
    }

    /// <summary>Deletes the snapshot from the images: QMP while QEMU runs, qemu-img otherwise. Images without it are skipped.</summary>
    private async Task RemoveFromImagesAsync(long vmId, SnapshotRecord record, CancellationToken cancellationToken)
    {
        if (runtime.MonitorOf(vmId) is { } monitor)
        {
            var attached = (await SnapshotDisksAsync(vmId, store.Get(vmId).Spec, cancellationToken, requireQcow2: false))
                .Where(d => record.Disks.TryGetValue(d.Key, out var disk) && disk.Path == d.Value.Path).Select(d => d.Key).ToHashSet(StringComparer.Ordinal);
            var commands = await CommandsAsync(monitor, vmId, cancellationToken);
            if (attached.Count > 0 && commands.Contains("snapshot-delete"))
            {
                await RunJobAsync(monitor, "snapshot-delete", vmId, new JsonObject
                {
                    ["tag"] = record.Name,
                    ["devices"] = new JsonArray([.. attached.Select(s => (JsonNode)JsonValue.Create(QemuCommand.DriveNode(s)))]),
                }, cancellationToken);
            }
            else
            {
                foreach (var slot in attached)
                {
                    try
                    {
                        await QmpAsync(monitor, vmId, "blockdev-snapshot-delete-internal-sync",
                            new JsonObject { ["device"] = QemuCommand.DriveNode(slot), ["name"] = record.Name }, cancellationToken);
                    }
                    catch (AgentProblemException e) when (e.Message.Contains("not found", StringComparison.OrdinalIgnoreCase) == true) { }
                }
            }
            // Disks the VM no longer has (a detached volume): their images are free, qemu-img can do it.
            foreach (var (slot, disk) in record.Disks.Where(d => !attached.Contains(d.Key) && File.Exists(d.Value.Path)))
                await QemuImgSnapshotAsync("-d", record.Name, slot, disk, vmId, cancellationToken, missingIsFine: true);
            return;
        }
        foreach (var (slot, disk) in record.Disks.Where(d => File.Exists(d.Value.Path)))
            await QemuImgSnapshotAsync("-d", record.Name, slot, disk, vmId, cancellationToken, missingIsFine: true);
    }

    private async Task QemuImgSnapshotAsync(string verb, string name, string slot, SnapshotDisk disk, long vmId, CancellationToken cancellationToken, bool missingIsFine = false)
    {
        if (missingIsFine && !(await ListImageSnapshotsAsync(disk.Path, cancellationToken)).Any(s => s.Name == name))
            return;
        // qemu-img snapshot has no -f: --image-opts names the format, so the image is never probed (DESIGN §6: commas doubled).
        var image = $"driver={disk.Format},file.driver=file,file.filename={disk.Path.Replace(",", ",,", StringComparison.Ordinal)}";
        var result = await RunImgAsync([QemuImgBinary, "snapshot", verb, name, "--image-opts", image], cancellationToken);
        if (result.Ok)
            return;
        var message = LastLine(result.StdErr);
        if (message.Contains("lock", StringComparison.OrdinalIgnoreCase))
            throw AgentProblemException.Conflict($"Disk {slot} of VM {vmId} ({Path.GetFileName(disk.Path)}) is in use by another process: {message}");
        if (message.Contains("No space", StringComparison.OrdinalIgnoreCase))
            throw AgentProblemException.NoSpace($"No space for snapshot \"{name}\" of disk {slot} of VM {vmId}: {message}");
        throw AgentProblemException.HostCommand($"qemu-img snapshot {verb} \"{name}\" on disk {slot} of VM {vmId} failed: {message}");
    }

    /// <summary>An internal snapshot of an image, as <c>qemu-img info</c> lists it.</summary>
    private sealed record ImageSnapshot(string Name, long VmStateSize);

    private async Task<IReadOnlyList<ImageSnapshot>> ListImageSnapshotsAsync(string path, CancellationToken cancellationToken)
    {
        // -U: a running VM holds the write lock; info only reads the header.
        var result = await RunImgAsync([QemuImgBinary, "info", "-U", "--output=json", "-f", "qcow2", path], cancellationToken);
        if (!result.Ok)
            throw AgentProblemException.HostCommand($"qemu-img info of {Path.GetFileName(path)} failed: {LastLine(result.StdErr)}");
        using var json = JsonDocument.Parse(result.StdOut);
        if (!json.RootElement.TryGetProperty("snapshots", out var list) || list.ValueKind != JsonValueKind.Array)
            return [];
        return [.. list.EnumerateArray().Select(s => new ImageSnapshot(
            s.GetProperty("name").GetString() ?? "",
            s.TryGetProperty("vm-state-size", out var size) ? size.GetInt64() : 0))];
    }

    private async Task<CommandResult> RunImgAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        try
        {
            return await runner.RunAsync(argv, ImgTimeout, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw AgentProblemException.HostCommand($"qemu-img {argv[1]} did not finish within {ImgTimeout.TotalSeconds:0} s.");
        }
    }

    private static async Task<HashSet<string>> CommandsAsync(VmMonitor monitor, long vmId, CancellationToken cancellationToken)
    {
        var reply = await QmpAsync(monitor, vmId, "query-commands", null, cancellationToken);
        return reply is JsonArray array
            ? array.Select(c => c?["name"]?.GetValue<string>()).OfType<string>().ToHashSet(StringComparer.Ordinal)
            : [];
    }

    private static async Task<JsonNode?> QmpAsync(VmMonitor monitor, long vmId, string command, JsonObject? arguments, CancellationToken cancellationToken)
    {
        try
        {
            return await monitor.ExecuteAsync(command, arguments, TimeSpan.FromMinutes(5), cancellationToken);
        }
        catch (QmpException e)
        {
            throw AgentProblemException.InvalidState($"VM {vmId}: QEMU refused {command}: {e.Description}");
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            throw AgentProblemException.HostCommand($"VM {vmId}: QEMU did not answer {command}: {e.Message}");
        }
    }

    /// <summary>Runs a QMP snapshot job (<c>snapshot-save</c>, <c>-load</c>, <c>-delete</c>, QEMU ≥ 6.0) to its end and dismisses it.</summary>
    private static async Task RunJobAsync(VmMonitor monitor, string command, long vmId, JsonObject arguments, CancellationToken cancellationToken)
    {
        if (!(await CommandsAsync(monitor, vmId, cancellationToken)).Contains(command))
            throw AgentProblemException.InvalidState($"VM {vmId}: this QEMU has no {command} command (QEMU 6.0 or newer is needed).");
        var jobId = $"kvm-{command}-{Guid.NewGuid():N}"[..40];
        arguments["job-id"] = jobId;
        await QmpAsync(monitor, vmId, command, arguments, cancellationToken);
        var deadline = DateTime.UtcNow + JobTimeout;
        while (true)
        {
            var jobs = await QmpAsync(monitor, vmId, "query-jobs", null, cancellationToken) as JsonArray;
            var job = jobs?.FirstOrDefault(j => j?["id"]?.GetValue<string>() == jobId);
            var status = job?["status"]?.GetValue<string>();
            if (job is null || status is "concluded" or "null")
            {
                var error = job?["error"]?.GetValue<string>();
                if (job is not null)
                {
                    try { await monitor.ExecuteAsync("job-dismiss", new JsonObject { ["id"] = jobId }, cancellationToken: CancellationToken.None); }
                    catch (Exception e) when (e is QmpException or IOException or TimeoutException) { }
                }
                if (error is not null)
                    throw AgentProblemException.InvalidState($"VM {vmId}: QEMU's {command} failed: {error}");
                return;
            }
            if (DateTime.UtcNow > deadline)
                throw AgentProblemException.HostCommand($"VM {vmId}: {command} did not finish within {JobTimeout.TotalMinutes:0} minutes (job {jobId} still {status}).");
            await Task.Delay(50, cancellationToken);
        }
    }

    private static string LastLine(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : lines[^1];
    }

    [LoggerMessage(EventId = 4601, Level = LogLevel.Information, Message = "VM {VmId}: snapshot {Name} taken (memory {IncludeMemory}, VM {Status}, fs frozen {Frozen})")]
    private static partial void LogCreated(ILogger logger, long vmId, string name, bool includeMemory, string status, bool frozen);

    [LoggerMessage(EventId = 4602, Level = LogLevel.Information, Message = "VM {VmId}: snapshot {Name} deleted")]
    private static partial void LogDeleted(ILogger logger, long vmId, string name);

    [LoggerMessage(EventId = 4603, Level = LogLevel.Information, Message = "VM {VmId}: rolled back to snapshot {Name} (memory {IncludeMemory})")]
    private static partial void LogRolledBack(ILogger logger, long vmId, string name, bool includeMemory);

    [LoggerMessage(EventId = 4604, Level = LogLevel.Warning, Message = "VM {VmId}: guest file systems not frozen for the snapshot: {Reason}")]
    private static partial void LogFreezeFailed(ILogger logger, long vmId, string reason);

    [LoggerMessage(EventId = 4605, Level = LogLevel.Warning, Message = "VM {VmId}: cleaning up snapshot {Name} failed: {Reason}")]
    private static partial void LogCleanupFailed(ILogger logger, long vmId, string name, string reason);
}
