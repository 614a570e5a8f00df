using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.Tests.Storage;

public sealed class QemuImgTests : IAsyncLifetime
{
    private const long MiB = 1L << 20;
    private readonly TestCommandRunner _runner = new();
    private readonly TempDir _dir;
    private readonly QemuImg _qemuImg;

    public QemuImgTests()
    {
        _dir = new TempDir(_runner);
        _qemuImg = new QemuImg(_runner, new StorageOptions { DataDir = _dir.Path });
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _dir.DisposeAsync();

    [Theory]
    [InlineData("qcow2", "off")]
    [InlineData("qcow2", "metadata")]
    [InlineData("qcow2", "falloc")]
    [InlineData("qcow2", "full")]
    [InlineData("raw", "off")]
    [InlineData("raw", "falloc")]
    [InlineData("raw", "full")]
    public async Task CreateMakesAnImageOfTheRequestedFormatSizeAndPreallocation(string format, string preallocation)
    {
        var path = _dir.Sub("disk." + format);

        Assert.True(await _qemuImg.CreateAsync(path, format, 64 * MiB, preallocation, CancellationToken.None));

        var info = await _qemuImg.InfoAsync(path, format, CancellationToken.None);
        Assert.Equal(format, info.Format);
        Assert.Equal(64 * MiB, info.VirtualSize);
        Assert.Null(info.BackingFile);
        if (preallocation is "falloc" or "full")
            Assert.True(info.ActualSize >= 64 * MiB, $"{preallocation} should allocate the whole image, got {info.ActualSize} bytes");
        else
            Assert.True(info.ActualSize < 8 * MiB, $"{preallocation} should stay sparse, got {info.ActualSize} bytes");
        Assert.Equal(["disk." + format], Directory.GetFileSystemEntries(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task InfoWithoutAFormatProbesItAndReportsTheBackingFile()
    {
        var backing = _dir.Sub("base.qcow2");
        var overlay = _dir.Sub("overlay.qcow2");
        await _qemuImg.CreateAsync(backing, "qcow2", 32 * MiB, "off", CancellationToken.None);
        await _runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, overlay);

        var info = await _qemuImg.InfoAsync(overlay, null, CancellationToken.None);

        Assert.Equal("qcow2", info.Format);
        Assert.Equal(32 * MiB, info.VirtualSize);
        Assert.Equal(backing, info.BackingFile);
    }

    [Theory]
    [InlineData("qcow2")]
    [InlineData("raw")]
    public async Task ResizeGrowsAnImage(string format)
    {
        var path = _dir.Sub("disk." + format);
        await _qemuImg.CreateAsync(path, format, 32 * MiB, "off", CancellationToken.None);

        await _qemuImg.ResizeAsync(path, format, 96 * MiB, "off", CancellationToken.None);

        Assert.Equal(96 * MiB, (await _qemuImg.InfoAsync(path, format, CancellationToken.None)).VirtualSize);
    }

    [Fact]
    public async Task ResizeNeverShrinks()
    {
        var path = _dir.Sub("disk.qcow2");
        await _qemuImg.CreateAsync(path, "qcow2", 64 * MiB, "off", CancellationToken.None);

        var e = await Assert.ThrowsAsync<AgentProblemException>(() => _qemuImg.ResizeAsync(path, "qcow2", 32 * MiB, "off", CancellationToken.None));

        Assert.Equal(ProblemTypes.HostCommandFailed, e.Type);
        Assert.Equal(64 * MiB, (await _qemuImg.InfoAsync(path, "qcow2", CancellationToken.None)).VirtualSize);
    }

    [Fact]
    public async Task CreateOverAnExistingFileIsRefusedAndTheFileIsUntouched()
    {
        var path = _dir.Sub("precious.qcow2");
        var bytes = new byte[100_000];
        Random.Shared.NextBytes(bytes);
        await File.WriteAllBytesAsync(path, bytes);
        var mtime = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, mtime);

        Assert.False(await _qemuImg.CreateAsync(path, "qcow2", 64 * MiB, "off", CancellationToken.None));

        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(path));
        Assert.Equal(["precious.qcow2"], Directory.GetFileSystemEntries(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task CreateOverADanglingSymlinkIsRefused()
    {
        var path = _dir.Sub("link.qcow2");
        var target = _dir.Sub("elsewhere", "target.qcow2");
        File.CreateSymbolicLink(path, target);

        Assert.False(await _qemuImg.CreateAsync(path, "qcow2", 64 * MiB, "off", CancellationToken.None));

        Assert.False(File.Exists(target));
        Assert.Equal(target, new FileInfo(path).LinkTarget);
    }

    [Fact]
    public async Task ConcurrentCreatesOfOneNameHaveExactlyOneWinner()
    {
        var path = _dir.Sub("contended.qcow2");

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            _qemuImg.CreateAsync(path, "qcow2", (i + 1) * 16 * MiB, "off", CancellationToken.None)));

        Assert.Single(results, r => r);
        var winner = Array.IndexOf(results, true);
        Assert.Equal((winner + 1) * 16 * MiB, (await _qemuImg.InfoAsync(path, "qcow2", CancellationToken.None)).VirtualSize);
        Assert.Equal(["contended.qcow2"], Directory.GetFileSystemEntries(_dir.Path).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("raw", "full")]
    [InlineData("raw", "falloc")]
    [InlineData("qcow2", "full")]
    public async Task CreateOnAFullFileSystemFailsWithNoSpaceAndLeavesNothing(string format, string preallocation)
    {
        var small = await _dir.MountTmpfsAsync("small", "8m");
        var path = Path.Combine(small, "big." + format);

        var e = await Assert.ThrowsAsync<AgentProblemException>(() => _qemuImg.CreateAsync(path, format, 64 * MiB, preallocation, CancellationToken.None));

        Assert.Equal(507, e.Status);
        Assert.Equal(ProblemTypes.NoSpace, e.Type);
        Assert.Contains("big." + format, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(SafeFile.TempPrefix, e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(small));
    }

    [Fact]
    public async Task AFailedCreateLeavesNoTempFile()
    {
        // raw has no metadata preallocation: qemu-img fails after the agent chose a temp name.
        var e = await Assert.ThrowsAsync<AgentProblemException>(() =>
            _qemuImg.CreateAsync(_dir.Sub("disk.raw"), "raw", 64 * MiB, "metadata", CancellationToken.None));

        Assert.Equal(ProblemTypes.HostCommandFailed, e.Type);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public async Task EveryCallIsAnArgvArrayWithThePathAsOneElement()
    {
        var path = _dir.Sub("name with spaces;and$(shell).qcow2");

        Assert.True(await _qemuImg.CreateAsync(path, "qcow2", 16 * MiB, "metadata", CancellationToken.None));

        Assert.True(File.Exists(path));
        var create = _runner.Calls.Single(c => c[1] == "create");
        Assert.Equal(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata"], create.Take(7));
        Assert.Equal((16 * MiB).ToString(System.Globalization.CultureInfo.InvariantCulture), create[^1]);
    }
}
