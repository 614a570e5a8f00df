using Kvm.Agent.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Storage;

/// <summary>Which VMs use which volumes, as the test says (the VM store's stand-in).</summary>
public sealed class FakeVolumeUsage : IVolumeUsage
{
    private readonly Lock _lock = new();
    private readonly List<(long VmId, string Slot, string VolumeId)> _uses = [];

    public void Add(long vmId, string slot, string volumeId)
    {
        lock (_lock)
            _uses.Add((vmId, slot, volumeId));
    }

    public void Clear()
    {
        lock (_lock)
            _uses.Clear();
    }

    public IReadOnlyList<(long VmId, string Slot, string VolumeId)> VolumeUses()
    {
        lock (_lock)
            return [.. _uses];
    }
}

/// <summary>A temp data directory and the storage feature on a test host.</summary>
public sealed class StorageHarness : IAsyncDisposable
{
    private StorageHarness(TestCommandRunner runner, TempDir dir, StorageOptions options, TestAgent agent, FakeVolumeUsage usage)
    {
        Runner = runner;
        Dir = dir;
        Options = options;
        Agent = agent;
        Usage = usage;
    }

    public TestCommandRunner Runner { get; }
    public TempDir Dir { get; }
    public StorageOptions Options { get; }
    public TestAgent Agent { get; }
    public FakeVolumeUsage Usage { get; }
    public HttpClient Client => Agent.Client;
    public string DefaultPool => Options.DefaultPoolPath;

    public T Get<T>() where T : notnull => Agent.Services.GetRequiredService<T>();

    public static async Task<StorageHarness> StartAsync()
    {
        var runner = new TestCommandRunner();
        var dir = new TempDir(runner);
        try
        {
            var options = new StorageOptions { DataDir = dir.Sub("data") };
            var usage = new FakeVolumeUsage();
            var agent = await TestAgent.StartAsync(runner,
                services => services.AddStorage(options).AddSingleton<IVolumeUsage>(usage),
                app => app.MapStorage());
            return new StorageHarness(runner, dir, options, agent, usage);
        }
        catch
        {
            await dir.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Agent.DisposeAsync();
        }
        finally
        {
            await Dir.DisposeAsync();
        }
    }
}
