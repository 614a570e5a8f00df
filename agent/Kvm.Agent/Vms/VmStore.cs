using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Kvm.Agent.Host;
using Kvm.Agent.Images;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>A VM definition as stored: the user's spec (nulls kept), its file bytes and their ETag.</summary>
public sealed record StoredVm(long VmId, VmSpec Spec, string ETag)
{
    /// <summary>A private, mutable copy of the spec (the cached one is shared and never changed).</summary>
    public VmSpec CopySpec() => VmStore.Deserialize(VmStore.Serialize(Spec));
}

/// <summary>An Idempotency-Key as remembered: the VM it created and a digest of the request.</summary>
public sealed record IdempotencyRecord(
    [property: JsonPropertyName("vm_id")] long VmId,
    [property: JsonPropertyName("request")] string RequestDigest);

[JsonSerializable(typeof(IdempotencyRecord))]
internal sealed partial class AgentJsonContext : JsonSerializerContext;

/// <summary>
/// VM definitions: one JSON file per VM (<c>&lt;data-dir&gt;/vms/&lt;vm_id&gt;.json</c>) holding exactly the spec the
/// user set, written atomically, cached in memory so reads never touch disk or QEMU. IDs are claimed by
/// exclusive file creation, so no two creates (threads or agents) can ever get the same one.
/// </summary>
public sealed class VmStore : IVolumeUsage, IImageUsage
{
    /// <summary>The lowest automatically allocated VM ID, as in Proxmox.</summary>
    public const long FirstVmId = 100;
    /// <summary>The highest VM ID.</summary>
    public const long LastVmId = 999_999_999;

    private static readonly JsonTypeInfo<VmSpec> SpecJson = (JsonTypeInfo<VmSpec>)ModelJson.Indented.GetTypeInfo(typeof(VmSpec));
    private readonly ConcurrentDictionary<long, StoredVm> _vms = new();
    private readonly string _vmsDir;
    private readonly string _keysDir;

    /// <summary>Creates the store over <see cref="AgentOptions.DataDir"/>; call <see cref="Load"/> before use.</summary>
    public VmStore(AgentOptions options)
    {
        _vmsDir = Path.Combine(options.DataDir, "vms");
        _keysDir = Path.Combine(options.DataDir, "idempotency");
    }

    /// <summary>Serializes creates, name checks and ID allocation within this agent.</summary>
    public SemaphoreSlim CreateLock { get; } = new(1, 1);

    /// <summary>Every VM, from memory.</summary>
    public IEnumerable<StoredVm> All => _vms.Values;

    /// <summary>The directory holding VM definitions (and EFI variable stores).</summary>
    public string VmsDirectory => _vmsDir;

    /// <summary>Reads every definition into memory; unreadable files are reported and skipped, temp files from a crash removed.</summary>
    public int Load(ILogger logger)
    {
        Directory.CreateDirectory(_vmsDir);
        Directory.CreateDirectory(_keysDir);
        foreach (var temp in Directory.EnumerateFiles(_vmsDir, ".*.tmp").Concat(Directory.EnumerateFiles(_keysDir, ".*.tmp")))
            File.Delete(temp);
        foreach (var file in Directory.EnumerateFiles(_vmsDir, "*.json"))
        {
            if (!long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                continue;
            try
            {
                var bytes = File.ReadAllBytes(file);
                var spec = Deserialize(bytes);
                if (spec.VmId != id)
                    throw new InvalidDataException($"vm_id {spec.VmId} does not match the file name");
                _vms[id] = new StoredVm(id, spec, ETagOf(bytes));
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                Log.BadDefinition(logger, file, e.Message);
            }
        }
        return _vms.Count;
    }

    /// <summary>The VM, or null.</summary>
    public StoredVm? Find(long vmId) => _vms.GetValueOrDefault(vmId);

    /// <summary>The VM, or 404.</summary>
    public StoredVm Get(long vmId) => Find(vmId) ?? throw AgentProblemException.NotFound($"VM {vmId} does not exist.");

    /// <summary>The VM with this name, or null.</summary>
    public StoredVm? FindByName(string name) => _vms.Values.FirstOrDefault(v => string.Equals(v.Spec.Name, name, StringComparison.Ordinal));

    /// <summary>
    /// Stores a new VM; <c>vm_id</c> is allocated (lowest free from 100) when null. Call under <see cref="CreateLock"/>.
    /// 409 when the explicit ID or the name is taken.
    /// </summary>
    public StoredVm Create(VmSpec spec)
    {
        if (FindByName(spec.Name!) is { } sameName)
            throw AgentProblemException.Conflict($"A VM named \"{spec.Name}\" exists already (vm_id {sameName.VmId}).");
        if (spec.VmId is { } wanted)
        {
            if (_vms.ContainsKey(wanted) || !TryClaim(wanted, spec, out var claimed))
                throw AgentProblemException.Conflict($"vm_id {wanted} is taken.");
            return claimed;
        }
        for (var id = FirstVmId; id <= LastVmId; id++)
        {
            if (!_vms.ContainsKey(id) && TryClaim(id, spec, out var claimed))
                return claimed;
        }
        throw AgentProblemException.Conflict("No free vm_id is left.");
    }

    private bool TryClaim(long id, VmSpec spec, out StoredVm stored)
    {
        var copy = Deserialize(Serialize(spec));
        copy.VmId = id;
        var bytes = Serialize(copy);
        stored = new StoredVm(id, copy, ETagOf(bytes));
        if (!Durable.CreateExclusively(PathOf(id), bytes))
            return false;
        _vms[id] = stored;
        return true;
    }

    /// <summary>Replaces a VM's definition atomically and returns the new stored version.</summary>
    public StoredVm Replace(long vmId, VmSpec spec)
    {
        var copy = Deserialize(Serialize(spec));
        copy.VmId = vmId;
        var bytes = Serialize(copy);
        Durable.WriteAtomically(PathOf(vmId), bytes);
        var stored = new StoredVm(vmId, copy, ETagOf(bytes));
        _vms[vmId] = stored;
        return stored;
    }

    /// <summary>Removes a VM's definition; a missing one is fine.</summary>
    public void Delete(long vmId)
    {
        File.Delete(PathOf(vmId));
        Durable.SyncDirectory(_vmsDir);
        _vms.TryRemove(vmId, out _);
        ForgetKeys(vmId);
    }

    /// <summary>
    /// Drops the Idempotency-Keys that created a deleted VM. A replay of such a key already made a new
    /// VM (the record's VM no longer exists), so the records only grew the data directory by one file
    /// per create, forever.
    /// </summary>
    private void ForgetKeys(long vmId)
    {
        foreach (var file in Directory.EnumerateFiles(_keysDir, "*.json"))
        {
            try
            {
                if (JsonSerializer.Deserialize(File.ReadAllBytes(file), AgentJsonContext.Default.IdempotencyRecord)?.VmId == vmId)
                    File.Delete(file);
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                // Another delete took it, or a torn record: FindKey treats both as absent.
            }
        }
    }

    /// <summary>The VM's EFI variable store path.</summary>
    public string EfiVarsPath(long vmId) => Path.Combine(_vmsDir, $"{vmId}.efivars.fd");

    /// <summary>What an Idempotency-Key was used for, or null.</summary>
    public IdempotencyRecord? FindKey(string key)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(KeyPath(key)), AgentJsonContext.Default.IdempotencyRecord);
        }
        catch (FileNotFoundException) { return null; }
        catch (JsonException) { return null; }
    }

    /// <summary>Remembers an Idempotency-Key before the VM it names is written, so a crash in between is retried onto the same ID.</summary>
    public void SaveKey(string key, IdempotencyRecord record) =>
        Durable.WriteAtomically(KeyPath(key), JsonSerializer.SerializeToUtf8Bytes(record, AgentJsonContext.Default.IdempotencyRecord));

    /// <summary>A digest of a spec's canonical JSON: the same request body in any formatting gives the same digest.</summary>
    public static string Digest(VmSpec spec) => Convert.ToHexStringLower(SHA256.HashData(Serialize(spec)));

    /// <inheritdoc />
    public IReadOnlyList<(long VmId, string Slot, string VolumeId)> VolumeUses() =>
    [
        .. _vms.Values.SelectMany(v =>
            (v.Spec.Disks ?? []).Where(d => d.Value.VolumeId is not null).Select(d => (v.VmId, d.Key, d.Value.VolumeId!))
            .Concat((v.Spec.Cdroms ?? []).Where(c => c.Value.VolumeId is not null).Select(c => (v.VmId, c.Key, c.Value.VolumeId!))))
    ];

    /// <inheritdoc />
    public IReadOnlyList<(long VmId, string Slot, string ImageId)> LinkedClones() =>
    [
        .. _vms.Values.SelectMany(v => (v.Spec.Disks ?? []).Where(d => d.Value is { ImageId: not null, LinkedClone: true })
            .Select(d => (v.VmId, d.Key, d.Value.ImageId!)))
    ];

    internal static byte[] Serialize(VmSpec spec) => JsonSerializer.SerializeToUtf8Bytes(spec, SpecJson);

    internal static VmSpec Deserialize(ReadOnlySpan<byte> bytes) => JsonSerializer.Deserialize(bytes, SpecJson) ?? throw new InvalidDataException("empty definition");

    private static string ETagOf(byte[] bytes) => $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes).AsSpan(0, 16))}\"";

    private string PathOf(long vmId) => Path.Combine(_vmsDir, $"{vmId}.json");

    private string KeyPath(string key) => Path.Combine(_keysDir, Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key))) + ".json");
}
