namespace Kvm.Agent.Tests.Storage;

/// <summary>A temp directory removed with everything in it, after unmounting anything a test mounted below it.</summary>
public sealed class TempDir : IAsyncDisposable
{
    private readonly List<string> _mounts = [];
    private readonly TestCommandRunner _runner;

    public TempDir(TestCommandRunner runner)
    {
        _runner = runner;
        Path = Directory.CreateTempSubdirectory("kvm-test-").FullName;
    }

    public string Path { get; }

    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (e.g. "8m") at a new directory below this one.</summary>
    public async Task<string> MountTmpfsAsync(string name, string size)
    {
        var mountPoint = Sub(name);
        Directory.CreateDirectory(mountPoint);
        await _runner.RunCheckedAsync("mount", "-t", "tmpfs", "-o", $"size={size},mode=0700", "kvm-test-tmpfs", mountPoint);
        _mounts.Add(mountPoint);
        return mountPoint;
    }

    /// <summary>Fills the file system that holds <paramref name="directory"/> until writes fail.</summary>
    public static void Fill(string directory)
    {
        var buffer = new byte[64 * 1024];
        Random.Shared.NextBytes(buffer);
        try
        {
            using var filler = new FileStream(System.IO.Path.Combine(directory, "filler"), FileMode.CreateNew);
            while (true)
            {
                filler.Write(buffer);
                filler.Flush(flushToDisk: true);
            }
        }
        catch (IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var mount in Enumerable.Reverse(_mounts))
        {
            var result = await _runner.RunAsync(["umount", mount], TimeSpan.FromSeconds(30));
            if (!result.Ok)
                await _runner.RunAsync(["umount", "-l", mount], TimeSpan.FromSeconds(30));
        }
        Directory.Delete(Path, recursive: true);
    }
}
