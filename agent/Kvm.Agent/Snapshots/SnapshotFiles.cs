using System.Globalization;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Agent.Tpm;
using Kvm.Agent.Vms;
using Kvm.Model;

namespace Kvm.Agent.Snapshots;

/// <summary>
/// What a snapshot keeps outside the disk images: a copy of the VM's swtpm state (its permanent-state file and the agent's
/// record) and a copy of its raw EFI variable store (efidisk), in <c>&lt;data-dir&gt;/vms/&lt;vm_id&gt;.snapshots/&lt;name&gt;/</c>
/// (<c>tpm/</c>, <c>efivars.fd</c>) next to the snapshot metadata. A snapshot's copy is made in a hidden temp directory and
/// renamed into place, so it is whole or absent; restores replace file by file with renames (or in place, for a store
/// QEMU holds open). Callers hold the VM's lock and have the guest paused or stopped, so swtpm and the firmware write
/// nothing meanwhile.
/// </summary>
public sealed class SnapshotFiles(VmStore store, IServiceProvider services)
{
    private const string TpmDirName = "tpm";
    private const string EfiVarsName = "efivars.fd";
    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private Swtpm? Swtpm => services.GetService<Swtpm>();

    /// <summary>All saved files of the VM's snapshots.</summary>
    public string DirOf(long vmId) => Path.Combine(store.VmsDirectory, vmId.ToString(CultureInfo.InvariantCulture) + ".snapshots");

    /// <summary>The saved files of one snapshot.</summary>
    public string DirOf(long vmId, string name) => Path.Combine(DirOf(vmId), name);

    /// <summary>True when a snapshot of the VM saves files: it has a TPM state or an EFI variable store.</summary>
    public bool HasAny(long vmId, VmSpec spec) => TpmStateOf(vmId, spec) is not null || EfiVarsOf(vmId) is not null;

    /// <summary>
    /// Copies the VM's TPM state and EFI variable store (those it has) into the snapshot's directory and notes them in
    /// <paramref name="record"/>. Swtpm's lock file and volatile state are left out: a disks-only rollback is a cold boot,
    /// and a memory snapshot carries the volatile state in QEMU's vmstate.
    /// </summary>
    public void Save(long vmId, VmSpec spec, SnapshotRecord record)
    {
        Delete(vmId, record.Name);
        var tpm = TpmStateOf(vmId, spec);
        var efiVars = EfiVarsOf(vmId);
        if (tpm is null && efiVars is null)
            return;
        var parent = DirOf(vmId);
        Directory.CreateDirectory(parent, DirMode);
        var temp = Path.Combine(parent, $".{record.Name}.{Guid.NewGuid():N}.tmp");
        var target = DirOf(vmId, record.Name);
        try
        {
            Directory.CreateDirectory(temp, DirMode);
            if (tpm is { } state)
            {
                var tpmCopy = Directory.CreateDirectory(Path.Combine(temp, TpmDirName), DirMode).FullName;
                foreach (var file in TpmFiles(state.Dir))
                    CopyDurably(file, Path.Combine(tpmCopy, Path.GetFileName(file)));
                Durable.SyncDirectory(tpmCopy);
            }
            if (efiVars is not null)
                CopyDurably(efiVars, Path.Combine(temp, EfiVarsName));
            Durable.SyncDirectory(temp);
            Directory.Move(temp, target);
            Durable.SyncDirectory(parent);
        }
        catch (Exception e)
        {
            DeleteDirectory(temp);
            if (SafeFile.IsNoSpace(e))
                throw AgentProblemException.NoSpace($"No space left in {parent} for the TPM state and EFI variables of snapshot \"{record.Name}\" of VM {vmId}.");
            throw;
        }
        record.TpmState = tpm is null ? null : Path.Combine(target, TpmDirName);
        record.TpmVersion = tpm?.Version;
        record.EfiVars = efiVars is null ? null : Path.Combine(target, EfiVarsName);
    }

    /// <summary>
    /// Refuses (409) a rollback whose saved TPM state does not fit the VM as it is now: it has no TPM any more, or one of
    /// another version (the state would be deleted or wiped at the next start).
    /// </summary>
    public static void CheckFits(long vmId, VmSpec spec, SnapshotRecord record)
    {
        if (record.TpmVersion is not { } saved)
            return;
        var now = spec.Tpm is null ? null : spec.Tpm.Version ?? "v2.0";
        if (now != saved)
            throw AgentProblemException.InvalidState($"Snapshot \"{record.Name}\" holds the state of a TPM {saved}, but VM {vmId} has " +
                (now is null ? "no TPM now" : $"a TPM {now} now") + $"; set tpm.version = \"{saved}\" again to roll back to it.");
    }

    /// <summary>
    /// Puts the saved TPM state and EFI variable store back. The TPM state replaces the VM's state directory file by file,
    /// and its record is rewritten for the VM's present <c>tpm</c> settings, so the next start keeps it (a pending
    /// <c>state_generation</c> reset is overridden by the rollback). <paramref name="qemuUp"/>: QEMU holds the variable
    /// store open, so it is overwritten in place (QEMU writes to the file it opened), with the guest paused.
    /// </summary>
    public void Restore(long vmId, VmSpec spec, SnapshotRecord record, bool qemuUp)
    {
        CheckFits(vmId, spec, record);
        if (record.TpmState is { } savedTpm && Swtpm is { } swtpm && spec.Tpm is { } tpm)
        {
            if (!Directory.Exists(savedTpm))
                throw AgentProblemException.InvalidState($"The saved TPM state of snapshot \"{record.Name}\" of VM {vmId} is missing ({savedTpm}).");
            var live = swtpm.StateDir(vmId);
            Directory.CreateDirectory(live, DirMode);
            var saved = TpmFiles(savedTpm).ToDictionary(f => Path.GetFileName(f), f => f, StringComparer.Ordinal);
            foreach (var (name, file) in saved)
            {
                var target = Path.Combine(live, name);
                var temp = SafeFile.TempPathFor(target);
                CopyDurably(file, temp);
                File.Move(temp, target, overwrite: true);
            }
            foreach (var stale in TpmFiles(live, keepVolatile: true).Where(f => !saved.ContainsKey(Path.GetFileName(f))))
                File.Delete(stale);
            Swtpm.WriteRecord(live, new TpmStateRecord(tpm.Version ?? "v2.0", tpm.StateGeneration ?? 0));
            Durable.SyncDirectory(live);
        }
        if (record.EfiVars is { } savedVars)
        {
            if (!File.Exists(savedVars))
                throw AgentProblemException.InvalidState($"The saved EFI variables of snapshot \"{record.Name}\" of VM {vmId} are missing ({savedVars}).");
            var path = store.EfiVarsPath(vmId);
            if (qemuUp && File.Exists(path))
            {
                using var output = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                using var input = File.OpenRead(savedVars);
                input.CopyTo(output);
                output.SetLength(input.Length);
                output.Flush(flushToDisk: true);
            }
            else
            {
                var temp = SafeFile.TempPathFor(path);
                CopyDurably(savedVars, temp);
                File.Move(temp, path, overwrite: true);
                Durable.SyncDirectory(Path.GetDirectoryName(path)!);
            }
        }
    }

    /// <summary>Deletes one snapshot's saved files (and copies a crash left half-made). Idempotent.</summary>
    public void Delete(long vmId, string name)
    {
        var parent = DirOf(vmId);
        if (!Directory.Exists(parent))
            return;
        DeleteDirectory(DirOf(vmId, name));
        foreach (var temp in Directory.EnumerateDirectories(parent, $".{name}.*.tmp"))
            DeleteDirectory(temp);
        if (!Directory.EnumerateFileSystemEntries(parent).Any())
            Directory.Delete(parent);
        Durable.SyncDirectory(store.VmsDirectory);
    }

    /// <summary>Deletes the saved files of all the VM's snapshots (the VM is being deleted). Idempotent.</summary>
    public void DeleteAll(long vmId)
    {
        DeleteDirectory(DirOf(vmId));
        Durable.SyncDirectory(store.VmsDirectory);
    }

    private sealed record TpmState(string Dir, string Version);

    /// <summary>
    /// The VM's TPM state as it is on disk, when the VM (still) has a <c>tpm</c> and swtpm_setup manufactured the state (its
    /// record is written last). A TPM added but not started yet has nothing to save; a removed one (deleted at the next start)
    /// is not saved, as no rollback could use it.
    /// </summary>
    private TpmState? TpmStateOf(long vmId, VmSpec spec)
    {
        if (spec.Tpm is null || Swtpm is not { } swtpm)
            return null;
        var dir = swtpm.StateDir(vmId);
        return Swtpm.ReadRecord(dir) is { } made && Swtpm.StateFileExists(dir, made.Version) ? new TpmState(dir, made.Version) : null;
    }

    /// <summary>The VM's EFI variable store, made at create for a UEFI VM (always a raw file today).</summary>
    private string? EfiVarsOf(long vmId)
    {
        var path = store.EfiVarsPath(vmId);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The files of swtpm's state that a snapshot keeps: not its lock file, temp files, or (unless asked) volatile state.</summary>
    private static IEnumerable<string> TpmFiles(string dir, bool keepVolatile = false) =>
        Directory.EnumerateFiles(dir).Where(f =>
        {
            var name = Path.GetFileName(f);
            return !name.StartsWith('.') && (keepVolatile || !name.EndsWith(".volatilestate", StringComparison.Ordinal));
        }).Order(StringComparer.Ordinal);

    private static void CopyDurably(string source, string target)
    {
        using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var output = new FileStream(target, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode600 });
        input.CopyTo(output);
        output.Flush(flushToDisk: true);
    }

    private static void DeleteDirectory(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        catch (DirectoryNotFoundException) { }
    }
}
