using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.CloudInit;

/// <summary>What the agent remembers of a VM's current seed.</summary>
public sealed record SeedState(
    [property: JsonPropertyName("instance_id")] string InstanceId,
    [property: JsonPropertyName("content_sha256")] string ContentSha256,
    [property: JsonPropertyName("iso")] string Iso);

[JsonSerializable(typeof(SeedState))]
internal sealed partial class SeedJsonContext : JsonSerializerContext;

/// <summary>The outcome of <see cref="CloudInitSeeds.EnsureAsync"/>.</summary>
/// <param name="Iso">The seed ISO to attach.</param>
/// <param name="InstanceId">Its instance-id.</param>
/// <param name="Changed">True when a new ISO was made (the content differs from the previous seed).</param>
/// <param name="Previous">The ISO the new one replaces (delete it once no QEMU holds it), or null.</param>
public sealed record SeedResult(string Iso, string InstanceId, bool Changed, string? Previous);

/// <summary>
/// The cloud-init seeds of VMs, in <c>&lt;data-dir&gt;/cloud-init</c>: one content-addressed ISO per VM
/// (<c>&lt;vm_id&gt;-&lt;hash&gt;.iso</c>, so QMP shows which seed a drive holds) and a small state file with its
/// instance-id. ISOs are made with genisoimage from files in a private temp directory, into a temp file renamed
/// into place. Seed contents (passwords, user-data) are never logged.
/// </summary>
public sealed class CloudInitSeeds(AgentOptions options, ICommandRunner runner, ILogger<CloudInitSeeds> logger)
{
    private static readonly TimeSpan IsoTimeout = TimeSpan.FromSeconds(60);
    private readonly ConcurrentDictionary<long, SeedState?> _states = new();

    /// <summary>The seeds directory.</summary>
    public string Dir => Path.Combine(options.DataDir, "cloud-init");

    /// <summary>The ISO tool (Debian's genisoimage).</summary>
    public string IsoTool { get; init; } = "genisoimage";

    /// <summary>The seed input of a VM (its effective spec): the settings, the name and the NICs' MACs.</summary>
    public static SeedInput InputFor(long vmId, VmSpec effective) =>
        new(effective.CloudInit!, effective.Name!, Vms.VmRuntime.MacsFor(vmId, effective).ToDictionary());

    /// <summary>The genisoimage argv that writes <paramref name="output"/> from the files under <paramref name="sourceDir"/>.</summary>
    public static IReadOnlyList<string> IsoArgv(string tool, string output, string label, string sourceDir) =>
        [tool, "-output", output, "-volid", label, "-joliet", "-rock", "-input-charset", "utf-8", "-quiet", sourceDir];

    /// <summary>The VM's current seed state, or null (no seed).</summary>
    public SeedState? StateOf(long vmId) => _states.GetOrAdd(vmId, ReadState);

    /// <summary>
    /// Makes sure the VM's seed matches its settings. New content gets a new ISO; its instance-id is derived from
    /// the content for a first seed and for <c>on_change = reprovision</c>, otherwise the previous one is kept (so
    /// cloud-init does not run as on a first boot). Unchanged content returns the existing ISO.
    /// </summary>
    public async Task<SeedResult> EnsureAsync(long vmId, VmSpec effective, CancellationToken cancellationToken)
    {
        var input = InputFor(vmId, effective);
        var hash = SeedBuilder.ContentHash(input);
        var previous = StateOf(vmId);
        if (previous is not null && previous.ContentSha256 == hash && File.Exists(previous.Iso))
            return new SeedResult(previous.Iso, previous.InstanceId, false, null);
        var instanceId = previous switch
        {
            null => SeedBuilder.InstanceIdFor(hash),
            _ when previous.ContentSha256 == hash => previous.InstanceId, // the ISO went missing: same content, same id
            _ when input.CloudInit.OnChange == "reprovision" => SeedBuilder.InstanceIdFor(hash),
            _ => previous.InstanceId,
        };
        var content = SeedBuilder.Build(input, instanceId);
        Directory.CreateDirectory(Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var iso = Path.Combine(Dir, $"{vmId.ToString(CultureInfo.InvariantCulture)}-{hash[..12]}-{instanceId[4..12]}.iso");
        await WriteIsoAsync(content, iso, cancellationToken);
        var state = new SeedState(instanceId, hash, iso);
        SafeFile.WriteAtomic(StatePath(vmId), JsonSerializer.SerializeToUtf8Bytes(state, SeedJsonContext.Default.SeedState));
        _states[vmId] = state;
        CloudInitLog.SeedWritten(logger, vmId, instanceId, content.Label);
        return new SeedResult(iso, instanceId, true, previous is not null && previous.Iso != iso ? previous.Iso : null);
    }

    /// <summary>Deletes every seed file of the VM (on delete, or when cloud_init is removed and the VM stopped). Idempotent.</summary>
    public void Remove(long vmId, string? keep = null)
    {
        _states.TryRemove(vmId, out _);
        if (!Directory.Exists(Dir))
            return;
        var id = vmId.ToString(CultureInfo.InvariantCulture);
        foreach (var file in Directory.EnumerateFiles(Dir, id + "-*"))
            if (file != keep)
                SafeFile.DeleteQuietly(file);
        if (keep is null)
            SafeFile.DeleteQuietly(StatePath(vmId));
        else
            _states.TryRemove(vmId, out _);
    }

    /// <summary>Deletes an ISO a swap replaced.</summary>
    public static void DeleteOld(string? iso)
    {
        if (iso is not null)
            SafeFile.DeleteQuietly(iso);
    }

    private async Task WriteIsoAsync(SeedContent content, string iso, CancellationToken cancellationToken)
    {
        var work = Path.Combine(Dir, $".tmp-{Path.GetFileNameWithoutExtension(iso)}-{Guid.NewGuid():N}");
        var source = Path.Combine(work, "seed");
        var output = Path.Combine(work, "seed.iso");
        try
        {
            Directory.CreateDirectory(source, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            foreach (var (name, bytes) in content.Files)
            {
                var path = Path.Combine(source, name);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await using (var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
                    await file.WriteAsync(bytes, cancellationToken);
            }
            var result = await runner.RunAsync(IsoArgv(IsoTool, output, content.Label, source), IsoTimeout, cancellationToken);
            if (!result.Ok || !File.Exists(output))
                throw AgentProblemException.HostCommand($"{IsoTool} failed to make the cloud-init seed: {result.StdErr.Trim()}");
            File.SetUnixFileMode(output, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            using (var handle = File.OpenHandle(output, FileMode.Open, FileAccess.ReadWrite))
                RandomAccess.FlushToDisk(handle);
            File.Move(output, iso, overwrite: true);
            SafeFile.FsyncDirectory(Dir);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (DirectoryNotFoundException) { }
        }
    }

    private SeedState? ReadState(long vmId)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(StatePath(vmId)), SeedJsonContext.Default.SeedState);
        }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    private string StatePath(long vmId) => Path.Combine(Dir, vmId.ToString(CultureInfo.InvariantCulture) + ".json");
}

/// <summary>Log messages of the cloud-init feature (never with seed content).</summary>
internal static partial class CloudInitLog
{
    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "VM {VmId}: cloud-init seed swapped live in {Slot} (on_change {OnChange})")]
    public static partial void SeedSwapped(ILogger logger, long vmId, string slot, string onChange);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "VM {VmId}: cloud-init seed written ({Label}, instance-id {InstanceId})")]
    public static partial void SeedWritten(ILogger logger, long vmId, string instanceId, string label);
}
