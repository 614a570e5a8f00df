using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model.Tests;

/// <summary>Validation and change classes of the CPU and memory controls.</summary>
public class CpuMemoryValidationTests
{
    private static IReadOnlyList<ValidationError> Errors(string json) =>
        Validator.Validate(JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!);

    [Fact]
    public void AllControlsTogetherAreValid() => Assert.Empty(Errors("""
        {"name":"a","cpu":{"sockets":2,"cores":2,"vcpus":3,"limit":1.5,"weight":500,"affinity":"0-1,3","nested":true},
         "memory":{"size_mib":2048,"hotplug_max_mib":8192,"shares":2000,"ksm":false,"balloon":{"min_mib":1024}}}
        """));

    [Theory]
    [InlineData("""{"name":"a","cpu":{"cores":2,"vcpus":3}}""", "cpu.vcpus", "more than sockets × cores × threads = 2")]
    [InlineData("""{"name":"a","cpu":{"vcpus":0}}""", "cpu.vcpus", "between 1 and 255")]
    [InlineData("""{"name":"a","cpu":{"limit":128.5}}""", "cpu.limit", "between 0 and 128")]
    [InlineData("""{"name":"a","cpu":{"limit":-1}}""", "cpu.limit", "between 0 and 128")]
    [InlineData("""{"name":"a","cpu":{"weight":0}}""", "cpu.weight", "between 1 and 10000")]
    [InlineData("""{"name":"a","cpu":{"weight":10001}}""", "cpu.weight", "between 1 and 10000")]
    [InlineData("""{"name":"a","cpu":{"affinity":"0-"}}""", "cpu.affinity", "CPU list")]
    [InlineData("""{"name":"a","cpu":{"affinity":"all"}}""", "cpu.affinity", "CPU list")]
    [InlineData("""{"name":"a","cpu":{"affinity":"4-2"}}""", "cpu.affinity", "backwards")]
    [InlineData("""{"name":"a","memory":{"size_mib":1024,"hotplug_max_mib":1024}}""", "memory.hotplug_max_mib", "must be more than size_mib")]
    [InlineData("""{"name":"a","memory":{"hotplug_max_mib":256}}""", "memory.hotplug_max_mib", "(512 MiB)")]
    [InlineData("""{"name":"a","memory":{"size_mib":1000,"hugepages":"1024"}}""", "memory.hugepages", "not a multiple of the 1024 MiB page size")]
    [InlineData("""{"name":"a","memory":{"hugepages":"4"}}""", "memory.hugepages", "one of")]
    [InlineData("""{"name":"a","memory":{"size_mib":1024,"hugepages":"2","hotplug_max_mib":2048}}""", "memory.hugepages", "hot-plug")]
    [InlineData("""{"name":"a","memory":{"shares":50001}}""", "memory.shares", "between 0 and 50000")]
    public void BadValuesNameTheirAttribute(string json, string attribute, string detail)
    {
        var errors = Errors(json);
        Assert.True(errors.Any(e => e.Attribute == attribute && e.Detail.Contains(detail, StringComparison.Ordinal)),
            string.Join("; ", errors.Select(e => e.ToString())));
    }

    [Fact]
    public void NumaNodesCoveringEveryVcpuAndAllMemoryAreValid() => Assert.Empty(Errors("""
        {"name":"a","cpu":{"sockets":2,"cores":2},"memory":{"size_mib":2048},
         "numa_nodes":{"numa0":{"cpus":"0-1","memory_mib":1024,"host_nodes":"0","policy":"bind"},"numa1":{"cpus":"2,3","memory_mib":1024}}}
        """));

    [Theory]
    [InlineData("""{"numa0":{"cpus":"0","memory_mib":512}}""", "numa_nodes", "vCPUs 1 are in no node")]
    [InlineData("""{"numa0":{"cpus":"0-1","memory_mib":256}}""", "numa_nodes", "add up to 256 MiB, but memory.size_mib is 512 MiB")]
    [InlineData("""{"numa0":{"cpus":"0-2","memory_mib":512}}""", "numa_nodes[\"numa0\"].cpus", "vCPU 2 does not exist")]
    [InlineData("""{"numa0":{"cpus":"0-1","memory_mib":256},"numa1":{"cpus":"1","memory_mib":256}}""", "numa_nodes[\"numa1\"].cpus", "also in numa0")]
    [InlineData("""{"numa1":{"cpus":"0-1","memory_mib":512}}""", "numa_nodes", "numa0 is missing")]
    [InlineData("""{"numa0":{"cpus":"0-1","memory_mib":512,"policy":"bind"}}""", "numa_nodes[\"numa0\"].policy", "needs `host_nodes`")]
    [InlineData("""{"numa8":{"cpus":"0-1","memory_mib":512}}""", "numa_nodes[\"numa8\"]", "numa0–numa7")]
    [InlineData("""{"numa0":{"memory_mib":512}}""", "numa_nodes[\"numa0\"].cpus", "is required")]
    public void BadNumaNodesNameTheirAttribute(string nodes, string attribute, string detail) =>
        BadValuesNameTheirAttribute($$"""{"name":"a","cpu":{"cores":2},"memory":{"size_mib":512},"numa_nodes":{{nodes}}}""", attribute, detail);

    [Theory]
    [InlineData("0", new[] { 0 })]
    [InlineData("0-2,5", new[] { 0, 1, 2, 5 })]
    [InlineData("3,1-2,3", new[] { 1, 2, 3 })]
    public void CpuListsParseAndFormatCanonically(string list, int[] cpus)
    {
        Assert.Equal(cpus, CpuList.Parse(list)!);
        Assert.Equal(cpus, CpuList.Parse(CpuList.Format(cpus))!);
    }

    [Fact]
    public void CpuListFormatJoinsRanges() => Assert.Equal("0-2,5,7-8", CpuList.Format([8, 0, 1, 2, 5, 7]));

    [Fact]
    public void LimitsWeightAffinityVcpusSizeAndSharesAreLiveTopologyAndBackingNeedARestart()
    {
        var before = new VmSpec { Name = "a", Hotplug = ["cpu", "memory"] };
        var after = new VmSpec
        {
            Name = "a",
            Hotplug = ["cpu", "memory"],
            Cpu = new CpuSpec { Cores = 2, Vcpus = 1, Limit = 1, Weight = 10, Affinity = "0", Nested = true },
            Memory = new MemorySpec { SizeMib = 1024, HotplugMaxMib = 4096, Shares = 10, Hugepages = "2", Ksm = false },
        };
        var kinds = Changes.Classify(before, after).ToDictionary(c => c.Attribute, c => c.Kind);
        foreach (var live in new[] { "cpu.vcpus", "cpu.limit", "cpu.weight", "cpu.affinity", "memory.shares" })
            Assert.Equal(UpdateKind.Live, kinds[live]);
        // The size changes with hotplug_max_mib itself: not live.
        foreach (var restart in new[] { "cpu.cores", "cpu.nested", "memory.size_mib", "memory.hotplug_max_mib", "memory.hugepages", "memory.ksm" })
            Assert.Equal(UpdateKind.Restart, kinds[restart]);
    }

    [Theory]
    [InlineData(1024L, 4096L, 2048L, 4096L, UpdateKind.Live)]     // grows within the hot-plug ceiling
    [InlineData(1024L, 4096L, 4096L, 4096L, UpdateKind.Live)]
    [InlineData(2048L, 4096L, 1024L, 4096L, UpdateKind.Restart)]  // shrinks
    [InlineData(1024L, 2048L, 4096L, 8192L, UpdateKind.Restart)]  // ceiling changes too
    [InlineData(1024L, null, 2048L, null, UpdateKind.Restart)]    // no hot-plug
    public void AMemorySizeChangeIsLiveOnlyAsAHotPlugGrowth(long before, long? beforeMax, long after, long? afterMax, UpdateKind kind)
    {
        var a = new VmSpec { Name = "a", Hotplug = ["memory"], Memory = new MemorySpec { SizeMib = before, HotplugMaxMib = beforeMax } };
        var b = new VmSpec { Name = "a", Hotplug = ["memory"], Memory = new MemorySpec { SizeMib = after, HotplugMaxMib = afterMax } };
        Assert.Equal(kind, Changes.Classify(a, b).Single(c => c.Attribute == "memory.size_mib").Kind);
    }
}
