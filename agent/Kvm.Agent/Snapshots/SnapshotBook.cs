using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kvm.Agent.Host;
using Kvm.Agent.Vms;

namespace Kvm.Agent.Snapshots;

/// <summary>One disk a snapshot holds: the image file it lives in when it was taken.</summary>
public sealed class SnapshotDisk
{
    /// <summary>Host path of the qcow2 image.</summary>
    [JsonPropertyName("path")] public required string Path { get; set; }
    /// <summary>Always qcow2 today.</summary>
    [JsonPropertyName("format")] public required string Format { get; set; }
}

/// <summary>A snapshot as the agent stores it (agent-internal; the API shape is <c>Kvm.Model.Snapshot</c>).</summary>
public sealed class SnapshotRecord
{
    /// <summary>Being taken: a crash leaves it so, and the next create or delete of that name cleans up.</summary>
    public const string Creating = "creating";
    /// <summary>Complete.</summary>
    public const string Ready = "ready";

    [JsonPropertyName("name")] public required string Name { get; set; }
    [JsonPropertyName("description")] public string? Description { get; set; }
    /// <summary>As the user set it (null stays null: the API returns what was set).</summary>
    [JsonPropertyName("include_memory")] public bool? IncludeMemory { get; set; }
    /// <summary>The memory state was saved.</summary>
    [JsonIgnore] public bool WithMemory => IncludeMemory == true;
    [JsonPropertyName("state")] public string State { get; set; } = Creating;
    [JsonPropertyName("created_at")] public DateTimeOffset CreatedAt { get; set; }
    [JsonPropertyName("parent")] public string? Parent { get; set; }
    [JsonPropertyName("vm_status")] public string? VmStatus { get; set; }
    /// <summary>Slot → image, in slot order.</summary>
    [JsonPropertyName("disks")] public SortedDictionary<string, SnapshotDisk> Disks { get; set; } = new(StringComparer.Ordinal);
    /// <summary>The slot whose image holds the memory state (QEMU's <c>vmstate</c> node), when <see cref="IncludeMemory"/>.</summary>
    [JsonPropertyName("vmstate_disk")] public string? VmStateDisk { get; set; }
    [JsonPropertyName("vm_state_bytes")] public long VmStateBytes { get; set; }
    [JsonPropertyName("fs_frozen")] public bool FsFrozen { get; set; }

    /// <summary>
    /// Host path of the copy of the VM's swtpm state directory taken with the snapshot (unlike Proxmox, a VM with a TPM can be
    /// snapshotted), or null when the VM had no TPM (see <see cref="SnapshotFiles"/>).
    /// </summary>
    [JsonPropertyName("tpm_state")] public string? TpmState { get; set; }
    /// <summary>The version of the TPM whose state <see cref="TpmState"/> holds.</summary>
    [JsonPropertyName("tpm_version")] public string? TpmVersion { get; set; }
    /// <summary>Host path of the copy of the VM's raw EFI variable store (efidisk) taken with the snapshot, or null (BIOS VM).</summary>
    [JsonPropertyName("efi_vars")] public string? EfiVars { get; set; }
}

/// <summary>All snapshots of one VM and which one the VM's present state comes from.</summary>
public sealed class SnapshotBookFile
{
    [JsonPropertyName("current")] public string? Current { get; set; }
    [JsonPropertyName("snapshots")] public List<SnapshotRecord> Snapshots { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SnapshotBookFile))]
internal sealed partial class SnapshotJsonContext : JsonSerializerContext;

/// <summary>
/// Snapshot metadata: one file per VM next to its definition (<c>&lt;data-dir&gt;/vms/&lt;vm_id&gt;.snapshots.json</c>), written
/// atomically (temp file, fsync, rename) like the definition, cached in memory. Callers hold the VM's lock.
/// </summary>
public sealed class SnapshotBook(VmStore store)
{
    private readonly ConcurrentDictionary<long, SnapshotBookFile> _cache = new();

    /// <summary>The VM's snapshots (a copy the caller may change and <see cref="Save"/>).</summary>
    public SnapshotBookFile Load(long vmId)
    {
        var book = _cache.GetOrAdd(vmId, Read);
        return Copy(book);
    }

    /// <summary>Stores the VM's snapshots atomically; an empty book removes the file.</summary>
    public void Save(long vmId, SnapshotBookFile book)
    {
        var path = PathOf(vmId);
        if (book.Snapshots.Count == 0)
        {
            Remove(vmId);
            return;
        }
        Durable.WriteAtomically(path, JsonSerializer.SerializeToUtf8Bytes(book, SnapshotJsonContext.Default.SnapshotBookFile));
        _cache[vmId] = Copy(book);
    }

    /// <summary>Forgets a VM's snapshots (its VM is being deleted).</summary>
    public void Remove(long vmId)
    {
        var path = PathOf(vmId);
        if (File.Exists(path))
        {
            File.Delete(path);
            Durable.SyncDirectory(store.VmsDirectory);
        }
        _cache.TryRemove(vmId, out _);
    }

    private SnapshotBookFile Read(long vmId)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(PathOf(vmId)), SnapshotJsonContext.Default.SnapshotBookFile) ?? new SnapshotBookFile();
        }
        catch (FileNotFoundException)
        {
            return new SnapshotBookFile();
        }
    }

    private static SnapshotBookFile Copy(SnapshotBookFile book) =>
        JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(book, SnapshotJsonContext.Default.SnapshotBookFile), SnapshotJsonContext.Default.SnapshotBookFile)!;

    private string PathOf(long vmId) => Path.Combine(store.VmsDirectory, vmId.ToString(CultureInfo.InvariantCulture) + ".snapshots.json");
}
