using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Storage;
using Kvm.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Storage.Pools;

/// <summary>
/// A stand-in for what this machine cannot run: LVM (answered from an in-memory table of logical volumes, in the output
/// format the real lvs prints for the agent's options) and an NFS mount (a real tmpfs mounted where the agent asked for
/// the export). Every other command runs for real. This proves the agent's orchestration — which commands it runs in
/// which order, what it stores, what it refuses — not that LVM or NFS behave as assumed: LvmThinRealTests and
/// NfsRealTests do that where the kernel allows.
/// </summary>
internal sealed class SimulatedPoolHost : ICommandRunner
{
    private readonly CommandRunner _real = new();
    private readonly Lock _lock = new();

    /// <summary>Volume group → LV name → (size, attributes, pool LV).</summary>
    public Dictionary<string, Dictionary<string, (long Size, string Attr, string Pool)>> Groups { get; } = new(StringComparer.Ordinal);

    /// <summary>Every argv, in order.</summary>
    public ConcurrentQueue<IReadOnlyList<string>> Calls { get; } = new();

    /// <summary>Exports "mounted": mount point → source.</summary>
    public ConcurrentDictionary<string, string> Mounts { get; } = new(StringComparer.Ordinal);

    public Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Calls.Enqueue([.. argv]);
        switch (argv[0])
        {
            case "lvs" or "lvcreate" or "lvextend" or "lvremove":
                lock (_lock)
                    return Task.FromResult(Lvm(argv));
            case "mount" when argv.Count == 7 && argv[1] == "-t" && argv[2] == "nfs":
                Mounts[argv[6]] = argv[5];
                return _real.RunAsync(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "kvm-test-nfs", argv[6]], timeout, cancellationToken);
            case "umount":
                Mounts.TryRemove(argv[1], out _);
                return _real.RunAsync(argv, timeout, cancellationToken);
            default:
                return _real.RunAsync(argv, timeout, cancellationToken);
        }
    }

    public int SpawnDetached(IReadOnlyList<string> argv, string logPath) => throw new NotSupportedException();

    private CommandResult Lvm(IReadOnlyList<string> argv)
    {
        string Option(string name) => argv[argv.ToList().IndexOf(name) + 1];
        long Bytes(string value) => long.Parse(value.TrimEnd('b'), CultureInfo.InvariantCulture);
        static CommandResult Fail(string message) => new(5, "", "  " + message + "\n");
        switch (argv[0])
        {
            case "lvs":
                if (!Groups.TryGetValue(argv[^1], out var lvs))
                    return Fail($"Volume group \"{argv[^1]}\" not found");
                return new(0, string.Concat(lvs.Select(l => $"  {l.Key}|{l.Value.Size}|{l.Value.Attr}|{l.Value.Pool}|{(l.Value.Attr[0] is 't' or 'V' ? "0.00" : "")}\n")), "");
            case "lvcreate":
            {
                var group = Groups[argv[^1]];
                var name = Option("--name");
                if (group.ContainsKey(name))
                    return Fail($"Logical Volume \"{name}\" already exists in volume group \"{argv[^1]}\"");
                group[name] = (Bytes(Option("--virtualsize")), "Vwi-a-tz--", Option("--thinpool"));
                return new(0, "", "");
            }
            default:
            {
                var (vg, name) = (argv[^1].Split('/')[0], argv[^1].Split('/')[1]);
                if (!Groups.TryGetValue(vg, out var group) || !group.TryGetValue(name, out var lv))
                    return Fail($"Failed to find logical volume \"{argv[^1]}\"");
                if (argv[0] == "lvremove")
                    group.Remove(name);
                else
                    group[name] = lv with { Size = Bytes(Option("--size")) };
                return new(0, "", "");
            }
        }
    }
}

public sealed class PoolTypeOrchestrationTests : IAsyncLifetime
{
    private readonly SimulatedPoolHost _host = new();
    private string _root = null!;
    private StorageOptions _options = null!;
    private TestAgent _agent = null!;

    private HttpClient Client => _agent.Client;

    public async Task InitializeAsync()
    {
        _root = Directory.CreateTempSubdirectory("kvm-pooltypes-").FullName;
        // A host whose kernel has device-mapper and an NFS client, and whose PATH has the tools.
        var proc = Path.Combine(_root, "proc");
        Directory.CreateDirectory(Path.Combine(proc, "sys/kernel"));
        File.WriteAllText(Path.Combine(proc, "sys/kernel/osrelease"), "6.1.0-simulated\n");
        File.WriteAllText(Path.Combine(proc, "misc"), " 236 device-mapper\n");
        File.WriteAllText(Path.Combine(proc, "filesystems"), "\text4\nnodev\tnfs\nnodev\tnfs4\n");
        var bin = Path.Combine(_root, "bin");
        Directory.CreateDirectory(bin);
        foreach (var tool in Kvm.Agent.Storage.Pools.StoragePoolSupport.Tools)
            File.WriteAllText(Path.Combine(bin, tool), "");
        _options = new StorageOptions { DataDir = Path.Combine(_root, "data"), ProcDirectory = proc, ModulesDirectory = Path.Combine(_root, "none"), ToolPath = bin };
        _host.Groups["vg0"] = new(StringComparer.Ordinal)
        {
            ["data"] = (10L << 30, "twi-aotz--", ""),
            ["root"] = (4L << 30, "-wi-ao----", ""),
        };
        _agent = await TestAgent.StartAsync(_host, services => services.AddStorage(_options), app => app.MapStorage());
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        foreach (var mountPoint in _host.Mounts.Keys)
            await new CommandRunner().RunAsync(["umount", mountPoint], TimeSpan.FromSeconds(10));
        Directory.Delete(_root, recursive: true);
    }

    private IReadOnlyList<string> LvmCalls() => [.. _host.Calls.Where(c => c[0] is "lvcreate" or "lvextend" or "lvremove").Select(c => string.Join(' ', c))];

    [Fact]
    public async Task AnLvmThinPoolServesRawThinVolumesThroughLvcreateLvextendAndLvremove()
    {
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", """{"name":"thin","type":"lvm-thin","volume_group":"vg0","thin_pool":"root"}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation); // root is not a thin pool
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", """{"name":"thin","type":"lvm-thin","volume_group":"vg9","thin_pool":"data"}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        var pool = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", """{"name":"thin","type":"lvm-thin","volume_group":"vg0","thin_pool":"data"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);
        Assert.Equal(("lvm-thin", "/dev/vg0", "vg0", "data", 10L << 30, (string?)null), (pool.Type, pool.HostPath, pool.VolumeGroup, pool.ThinPool, pool.CapacityBytes, pool.Path));
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", """{"name":"thin2","type":"lvm-thin","volume_group":"vg0","thin_pool":"data"}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        var restarted = new StoragePools(_options, _agent.Services, Microsoft.Extensions.Logging.Abstractions.NullLogger<StoragePools>.Instance);
        Assert.Equal(("/dev/vg0", "data"), (restarted.Find("thin")!.Path, restarted.Find("thin")!.Spec.ThinPool));

        var qcow2 = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"d.qcow2","pool":"thin","size_gib":1}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        Assert.Equal("format", Assert.Single(qcow2.Errors!).Attribute);
        var volume = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"d.raw","pool":"thin","size_gib":1,"format":"raw"}"""))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.Created);
        Assert.Equal(("thin/d.raw", "/dev/vg0/d.raw", "raw", 1L << 30), (volume.VolumeId, volume.Path, volume.Format, volume.CapacityBytes));
        var listed = await (await Client.GetAsync("/v1/volumes?pool=thin")).ReadModelAsync(ModelJsonContext.Default.ListVolume, HttpStatusCode.OK);
        Assert.Equal(["thin/d.raw"], listed.Select(v => v.VolumeId)); // the thin pool and the other LVs of the group are not volumes

        var get = await Client.GetAsync("/v1/volumes/thin/d.raw");
        var grown = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/volumes/thin/d.raw", """{"name":"d.raw","pool":"thin","size_gib":3,"format":"raw"}""", get.Headers.ETag!.Tag))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.OK);
        Assert.Equal(3L << 30, grown.CapacityBytes);

        var held = await (await Client.DeleteAsync("/v1/storage-pools/thin")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        Assert.Contains("d.raw", held.Detail, StringComparison.Ordinal);

        // A VM's inline disk: a thin LV QEMU opens as a host block device; removed with the VM.
        var storage = _agent.Services.GetRequiredService<IVmStorage>();
        var spec = new VmSpec { Name = "a", Disks = new() { ["virtio0"] = new DiskSpec { Pool = "thin", SizeGib = 2, Format = "raw" } } };
        var created = await storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None);
        Assert.Equal(["/dev/vg0/vm-100-disk-virtio0.raw"], created);
        await storage.DiscardCreatedAsync(created[0]); // a failed create's rollback: lvremove, never an unlink in /dev
        Assert.False(_host.Groups["vg0"].ContainsKey("vm-100-disk-virtio0.raw"));
        await storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None);
        var (disks, _) = await storage.ResolveAsync(100, spec, CancellationToken.None);
        Assert.Equal(new Kvm.Agent.Qemu.DiskFile("/dev/vg0/vm-100-disk-virtio0.raw", "raw", HostDevice: true), disks["virtio0"]);
        spec.Disks["virtio0"].SizeGib = 4;
        await storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None);
        await storage.RemoveInlineDisksAsync(100, spec, CancellationToken.None);
        var clone = new VmSpec { Name = "c", Clone = new CloneSpec { SourceVmId = 100 }, Disks = new() { ["virtio0"] = new DiskSpec { Pool = "thin", SizeGib = 1, Format = "raw" } } };
        var cloneRefused = await Assert.ThrowsAsync<Kvm.Agent.Problems.AgentProblemException>(() => storage.ResolveAsync(102, clone, CancellationToken.None));
        Assert.Equal("disks[\"virtio0\"].pool", Assert.Single(cloneRefused.Errors!).Attribute);
        var qcow2Disk = new VmSpec { Name = "b", Disks = new() { ["scsi0"] = new DiskSpec { Pool = "thin", SizeGib = 2 } } };
        var refused = await Assert.ThrowsAsync<Kvm.Agent.Problems.AgentProblemException>(() => storage.EnsureInlineDisksAsync(101, qcow2Disk, CancellationToken.None));
        Assert.Equal("disks[\"scsi0\"].format", Assert.Single(refused.Errors!).Attribute);

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/volumes/thin/d.raw")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/storage-pools/thin")).StatusCode);
        Assert.Equal([
            "lvcreate --quiet --yes --type thin --virtualsize 1073741824b --thinpool data --name d.raw vg0",
            "lvextend --quiet --size 3221225472b vg0/d.raw",
            "lvcreate --quiet --yes --type thin --virtualsize 2147483648b --thinpool data --name vm-100-disk-virtio0.raw vg0",
            "lvremove --quiet --yes vg0/vm-100-disk-virtio0.raw",
            "lvcreate --quiet --yes --type thin --virtualsize 2147483648b --thinpool data --name vm-100-disk-virtio0.raw vg0",
            "lvextend --quiet --size 4294967296b vg0/vm-100-disk-virtio0.raw",
            "lvremove --quiet --yes vg0/vm-100-disk-virtio0.raw",
            "lvremove --quiet --yes vg0/d.raw",
        ], LvmCalls());
        Assert.Equal(["data", "root"], _host.Groups["vg0"].Keys.Order(StringComparer.Ordinal)); // the agent never touches the group or the pool
        Assert.False(File.Exists(Path.Combine(_options.PoolDefinitionsDir, "thin.json")));
    }

    [Fact]
    public async Task AnNfsPoolIsMountedUsedAsADirectoryAndUnmountedOnDelete()
    {
        var mountPoint = Path.Combine(_options.DataDir, "pools", "nas");
        var pool = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", """{"name":"nas","type":"nfs","server":"fd00::5","export":"/srv/vm","mount_options":"vers=4.2"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);
        Assert.Equal(("nfs", mountPoint, "fd00::5", "/srv/vm", "vers=4.2"), (pool.Type, pool.HostPath, pool.Server, pool.Export, pool.MountOptions));
        Assert.Equal(["mount", "-t", "nfs", "-o", "nosuid,nodev,noexec,vers=4.2", "[fd00::5]:/srv/vm", mountPoint], _host.Calls.Single(c => c[0] == "mount"));
        Assert.Equal(16L << 20, pool.CapacityBytes); // statvfs of what is mounted there

        var volume = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"d.qcow2","pool":"nas","size_gib":1}"""))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.Created);
        Assert.Equal(Path.Combine(mountPoint, "d.qcow2"), volume.Path);
        await (await Client.DeleteAsync("/v1/storage-pools/nas")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        await Client.DeleteAsync("/v1/volumes/nas/d.qcow2");

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/storage-pools/nas")).StatusCode);
        Assert.Equal(["umount", mountPoint], _host.Calls.Last());
        Assert.False(Directory.Exists(mountPoint));
        Assert.DoesNotContain(" " + mountPoint + " ", File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnmountedNfsPoolTakesNoVolumesAndIsMountedAgainWhenTheAgentStarts()
    {
        var mountPoint = Path.Combine(_options.DataDir, "pools", "nas");
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", """{"name":"nas","type":"nfs","server":"nas.example","export":"/srv/vm"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);
        await _host.RunAsync(["umount", mountPoint], TimeSpan.FromSeconds(10));

        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"d.qcow2","pool":"nas","size_gib":1}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.InvalidState);
        Assert.Empty(Directory.EnumerateFileSystemEntries(mountPoint)); // nothing written to the local mount point

        var restarted = new StoragePools(_options, _agent.Services, Microsoft.Extensions.Logging.Abstractions.NullLogger<StoragePools>.Instance);
        await restarted.MountAllAsync(CancellationToken.None);
        Assert.Contains(" " + mountPoint + " ", File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
    }
}
