using System.Net;
using Kvm.Agent.Storage.Pools;
using Kvm.Client;
using Kvm.Model;
using Xunit.Abstractions;
using RealAgent = Kvm.Agent.Tests.Support.TestAgent;

namespace Kvm.Agent.Tests.Storage.Pools;

/// <summary>
/// The real agent against this machine's real kernel: <c>kvm_host</c> lists only the pool types the kernel can serve,
/// and creating a pool of a type it cannot serve is refused (422 at <c>type</c>, naming the missing kernel feature) with
/// nothing changed on disk. What the kernel offers is read here independently of the agent (/proc/misc,
/// /proc/filesystems, /lib/modules), so a wrong probe or a wrong refusal fails. On a machine that has device-mapper or
/// an NFS client, the refusal half does not apply and the test says so in its output; LvmThinRealTests and
/// NfsRealTests then run for real.
/// </summary>
public sealed class StoragePoolTypesTests(ITestOutputHelper output) : IAsyncLifetime
{
    private RealAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await RealAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private static string Release => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();

    private static bool HasModuleTree => Directory.Exists("/lib/modules/" + Release);

    /// <summary>device-mapper as the kernel registers it: a misc device (or a module that can load it).</summary>
    private static bool KernelHasDeviceMapper =>
        File.ReadAllText("/proc/misc").Split('\n').Any(l => l.Trim().EndsWith(" device-mapper", StringComparison.Ordinal)) || HasModuleTree;

    private static bool KernelHasNfs =>
        File.ReadAllLines("/proc/filesystems").Any(l => l.EndsWith("\tnfs", StringComparison.Ordinal) || l.EndsWith("\tnfs4", StringComparison.Ordinal)) || HasModuleTree;

    [Fact]
    public async Task LvmThinIsRefusedNamingDeviceMapperWhenTheKernelHasNoneAndNothingChanges() =>
        await CheckTypeAsync("lvm-thin", KernelHasDeviceMapper, "device-mapper",
            """{"name":"thin","type":"lvm-thin","volume_group":"vg0","thin_pool":"data"}""");

    [Fact]
    public async Task NfsIsRefusedNamingTheNfsClientWhenTheKernelHasNoneAndNothingChanges() =>
        await CheckTypeAsync("nfs", KernelHasNfs, "NFS client",
            """{"name":"nas","type":"nfs","server":"127.0.0.1","export":"/srv/kvm"}""");

    private async Task CheckTypeAsync(string type, bool kernelHasIt, string feature, string body)
    {
        var host = await _agent.Client.GetHostAsync();
        Assert.Contains("dir", host.StoragePoolTypes!);
        if (kernelHasIt)
        {
            // Only missing tools may keep the type away on such a host; the kernel feature must not be reported missing.
            var reason = host.StoragePoolTypesUnavailable!.GetValueOrDefault(type);
            Assert.True(reason is null || !reason.Contains(feature, StringComparison.Ordinal), reason);
            output.WriteLine($"NOT EXERCISED HERE: this kernel has {feature}; the refusal applies to kernels without it. " +
                $"{type} is {(reason is null ? "served" : "unavailable: " + reason)}.");
            return;
        }
        Assert.DoesNotContain(type, host.StoragePoolTypes!);
        var missing = host.StoragePoolTypesUnavailable![type];
        Assert.Contains(feature, missing, StringComparison.Ordinal);
        Assert.Contains(Release, missing, StringComparison.Ordinal);

        var before = _agent.Listing();
        using var http = _agent.RawClient();
        var problem = await (await http.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", body))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        var error = Assert.Single(problem.Errors!);
        Assert.Equal("type", error.Attribute);
        Assert.Equal($"this host cannot serve \"{type}\" pools: {missing}.", error.Detail);
        Assert.Equal(before, _agent.Listing());
        Assert.DoesNotContain((await _agent.Client.ListStoragePoolsAsync()).Select(p => p.Name), n => n is "thin" or "nas");
        await Assert.ThrowsAsync<KvmApiException>(() => _agent.Client.GetStoragePoolAsync(type == "nfs" ? "nas" : "thin"));
        output.WriteLine($"{type} refused as expected on this kernel: {missing}");
    }

    [Fact]
    public async Task ADirPoolStillWorksAndReportsItsHostPath()
    {
        var dir = Path.Combine(_agent.Root, "extra-pool");
        var pool = (await _agent.Client.CreateStoragePoolAsync(new StoragePoolSpec { Name = "extra", Path = dir })).Value;
        Assert.Equal((dir, (string?)null, (string?)null), (pool.HostPath, pool.VolumeGroup, pool.Server));
        await _agent.Client.DeleteStoragePoolAsync("extra");
    }
}

/// <summary>A fact that runs only where a pool type can really be served, and says why not elsewhere (xunit prints the reason as a skipped test).</summary>
public sealed class PoolTypeHostFactAttribute : FactAttribute
{
    public PoolTypeHostFactAttribute(string type, params string[] tools)
    {
        var missing = StoragePoolSupport.Evaluate(StoragePoolSupport.Read())[type];
        // The loopback export needs the kernel's NFS server too.
        if (missing is null && type == "nfs" && !File.ReadAllText("/proc/filesystems").Contains("\tnfsd", StringComparison.Ordinal)
            && !Directory.Exists("/lib/modules/" + File.ReadAllText("/proc/sys/kernel/osrelease").Trim()))
            missing = "the kernel has no NFS server (no nfsd in /proc/filesystems and no module tree)";
        var absent = tools.Where(t => !new[] { "/usr/sbin", "/usr/bin", "/sbin", "/bin" }.Any(d => File.Exists(Path.Combine(d, t)))).ToList();
        if (missing is not null)
            Skip = $"NOT RUNNABLE ON THIS MACHINE: {missing}. The {type} pool cannot be made for real here; StoragePoolTypesTests proves the refusal instead.";
        else if (absent.Count > 0)
            Skip = $"NOT RUNNABLE ON THIS MACHINE: {string.Join(", ", absent)} not installed (needed to make the test's own {type} backing store).";
    }
}
