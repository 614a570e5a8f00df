using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Kvm.Agent.Tests.Storage;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;
using TestAgent = Kvm.Agent.Tests.Support.TestAgent;

namespace Kvm.Agent.Tests.Images;

/// <summary>Image imports through a real agent from a loopback HTTP server and from host files, with real qemu-img and decompressors.</summary>
public sealed class ImageImportTests : IAsyncLifetime
{
    private const long MiB = 1L << 20;
    private readonly TestCommandRunner _runner = new();
    private TestAgent _agent = null!;
    private LoopbackFileServer _server = null!;
    private TempDir _dir = null!;
    private byte[] _raw = null!;
    private byte[] _qcow2 = null!;

    public async Task InitializeAsync()
    {
        _agent = await TestAgent.StartAsync();
        _server = await LoopbackFileServer.StartAsync();
        _dir = new TempDir(_runner);
        // Text, so no format probe can mistake the raw image for anything else.
        _raw = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("kvm raw image test data\n", (int)(2 * MiB / 24 + 1))))[..(int)(2 * MiB)];
        await _runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", _dir.Sub("small.qcow2"), "64M");
        _qcow2 = await File.ReadAllBytesAsync(_dir.Sub("small.qcow2"));
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _server.DisposeAsync();
        await _dir.DisposeAsync();
    }

    private KvmClient Client => _agent.Client;

    private string ImagesDir => Path.Combine(_agent.DataDir, "pools", "default", ".images");

    private IEnumerable<string> LeftInPool() =>
        Directory.Exists(ImagesDir) ? Directory.EnumerateFileSystemEntries(ImagesDir).Select(p => Path.GetFileName(p)) : [];

    private static string Hex(HashAlgorithm algorithm, byte[] bytes) => Convert.ToHexStringLower(algorithm.ComputeHash(bytes));

    [Fact]
    public async Task AQcow2FromAUrlWithItsChecksumIsStoredReadOnlyWithDetectedFormatAndDigest()
    {
        var url = _server.Serve("small.qcow2", _qcow2);
        var image = (await Client.CreateImageAsync(new ImageSpec { Name = "small.qcow2", Url = url, Checksum = Hex(SHA256.Create(), _qcow2).ToUpperInvariant() })).Value;

        Assert.Equal("default/small.qcow2", image.ImageId);
        Assert.Equal("qcow2", image.Format);
        Assert.Equal(64 * MiB, image.VirtualSizeBytes);
        Assert.Equal(_qcow2.Length, image.SizeBytes);
        Assert.Equal(Hex(SHA256.Create(), _qcow2), image.Sha256);
        Assert.Null(image.Pool); // read back what the user set
        Assert.Empty(image.UsedBy!);
        Assert.Equal(Path.Combine(ImagesDir, "small.qcow2"), image.Path);
        Assert.Equal(_qcow2, await File.ReadAllBytesAsync(image.Path!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(image.Path!));
        Assert.Equal(["small.qcow2"], LeftInPool());

        Assert.Equal(image.Sha256, (await Client.GetImageAsync("default", "small.qcow2")).Value.Sha256);
        Assert.Equal(["default/small.qcow2"], (await Client.ListImagesAsync()).Select(i => i.ImageId));
        Assert.DoesNotContain((await Client.ListVolumesAsync()), v => v.Name == "small.qcow2");

        var again = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateImageAsync(new ImageSpec { Name = "small.qcow2", Url = url }));
        Assert.Equal(HttpStatusCode.Conflict, again.Status);

        await Client.DeleteImageAsync("default", "small.qcow2");
        Assert.Empty(LeftInPool());
        Assert.Empty(await Client.ListImagesAsync());
        Assert.True((await Assert.ThrowsAsync<KvmApiException>(() => Client.GetImageAsync("default", "small.qcow2"))).IsNotFound);
    }

    [Theory]
    [InlineData("gz", null)]
    [InlineData("xz", null)]
    [InlineData("zst", null)]
    [InlineData("bz2", null)]
    [InlineData("xz", "xz")] // named explicitly on a URL without the suffix
    public async Task CompressedRawImagesAreDecompressedAndTheChecksumCoversTheDownload(string kind, string? setting)
    {
        var compressed = await CompressAsync(kind);
        var url = _server.Serve(setting is null ? $"disk.raw.{kind}" : "disk-download", compressed);
        var image = (await Client.CreateImageAsync(new ImageSpec
        {
            Name = "disk.raw", Url = url, Decompression = setting, ChecksumAlgorithm = "sha512", Checksum = Hex(SHA512.Create(), compressed),
        })).Value;

        Assert.Equal("raw", image.Format);
        Assert.Equal(_raw.Length, image.VirtualSizeBytes);
        Assert.Equal(Hex(SHA256.Create(), _raw), image.Sha256);
        Assert.Equal(_raw, await File.ReadAllBytesAsync(image.Path!));
        Assert.Equal(["disk.raw"], LeftInPool());
    }

    [Fact]
    public async Task AWrongChecksumIsRefusedAtChecksumAndLeavesNothing()
    {
        var before = _agent.Listing();
        var url = _server.Serve("small.qcow2.gz", await CompressAsync("gz"));
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateImageAsync(new ImageSpec { Name = "bad.img", Url = url, Checksum = new string('0', 64) }));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
        Assert.Equal(["checksum"], e.Errors.Select(x => x.Attribute));
        Assert.Empty(LeftInPool());
        Assert.Equal(before.Where(p => !p.Contains(".images", StringComparison.Ordinal)), _agent.Listing().Where(p => !p.Contains(".images", StringComparison.Ordinal)));
        Assert.Empty(await Client.ListImagesAsync());
    }

    [Fact]
    public async Task AMissingUrlIsAClearProblemAndLeavesNothing()
    {
        var url = new Uri(_server.BaseAddress, "nothing-here.qcow2").AbsoluteUri;
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateImageAsync(new ImageSpec { Name = "missing.qcow2", Url = url }));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
        var error = Assert.Single(e.Errors);
        Assert.Equal("url", error.Attribute);
        Assert.Contains("404", error.Detail, StringComparison.Ordinal);
        Assert.Empty(LeftInPool());
    }

    [Fact]
    public async Task AGarbledDownloadFailsDecompressionAndLeavesNothing()
    {
        var url = _server.Serve("disk.raw.xz", _raw[..4096]);
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateImageAsync(new ImageSpec { Name = "garbled.raw", Url = url }));

        Assert.Equal(["decompression"], e.Errors.Select(x => x.Attribute));
        Assert.Empty(LeftInPool());
    }

    [Fact]
    public async Task AHostFileIsCopiedNotMovedAndConvertedWhenAsked()
    {
        var source = _dir.Sub("small.qcow2");
        var image = (await Client.CreateImageAsync(new ImageSpec { Name = "from-host.raw", SourcePath = source, ConvertTo = "raw" })).Value;

        Assert.Equal("raw", image.Format);
        Assert.Equal(64 * MiB, image.VirtualSizeBytes);
        Assert.Equal(_qcow2, await File.ReadAllBytesAsync(source));
        var info = await _runner.RunAsync(["qemu-img", "info", "--output=json", image.Path!], TimeSpan.FromSeconds(10));
        Assert.Contains("\"format\": \"raw\"", info.StdOut, StringComparison.Ordinal);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(image.Path!))), image.Sha256);
        Assert.Equal(["from-host.raw"], LeftInPool());

        var kept = (await Client.CreateImageAsync(new ImageSpec { Name = "kept.qcow2", SourcePath = source })).Value;
        Assert.Equal("qcow2", kept.Format);
    }

    [Fact]
    public async Task AnImageThatNamesABackingFileIsRefused()
    {
        // A qcow2 from elsewhere that points at a host file would hand that file to every guest made from it.
        var overlay = _dir.Sub("overlay.qcow2");
        await _runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", "-b", _dir.Sub("small.qcow2"), "-F", "qcow2", overlay);
        var url = _server.Serve("overlay.qcow2", await File.ReadAllBytesAsync(overlay));
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateImageAsync(new ImageSpec { Name = "overlay.qcow2", Url = url }));

        Assert.Equal(["url"], e.Errors.Select(x => x.Attribute));
        Assert.Contains("backing", e.Errors[0].Detail, StringComparison.Ordinal);
        Assert.Empty(LeftInPool());
    }

    [Theory]
    [InlineData("""{"name":"../escape","url":"http://127.0.0.1/x"}""", "name")]
    [InlineData("""{"name":".images","url":"http://127.0.0.1/x"}""", "name")]
    [InlineData("""{"name":"x.img","pool":"../x","url":"http://127.0.0.1/x"}""", "pool")]
    [InlineData("""{"name":"x.img","url":"file:///etc/passwd"}""", "url")]
    [InlineData("""{"name":"x.img"}""", "url")]
    [InlineData("""{"name":"x.img","url":"http://127.0.0.1/x","source_path":"/etc/hostname"}""", "source_path")]
    [InlineData("""{"name":"x.img","source_path":"/tmp/../etc/passwd"}""", "source_path")]
    [InlineData("""{"name":"x.img","source_path":"/nonexistent/file"}""", "source_path")]
    [InlineData("""{"name":"x.img","url":"http://127.0.0.1/x","checksum":"abcd"}""", "checksum")]
    [InlineData("""{"name":"x.img","url":"http://127.0.0.1/x","checksum_algorithm":"sha512","checksum":"0000000000000000000000000000000000000000000000000000000000000000"}""", "checksum")]
    [InlineData("""{"name":"x.img","url":"http://127.0.0.1/x","decompression":"zip"}""", "decompression")]
    [InlineData("""{"name":"x.img","pool":"nope","url":"http://127.0.0.1/x"}""", "pool")]
    public async Task BadSpecsAreRefusedAtTheirAttribute(string body, string attribute)
    {
        using var http = _agent.RawClient();
        var response = await http.SendJsonAsync(HttpMethod.Post, "/v1/images", body);
        var problem = await response.ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Contains(attribute, problem.Errors!.Select(e => e.Attribute));
        Assert.Empty(LeftInPool());
        Assert.False(File.Exists(Path.Combine(_agent.DataDir, "pools", "escape")));
    }

    [Fact]
    public async Task TheAgentsOwnFilesCannotBeImported()
    {
        var vmId = (await Client.CreateVmAsync(Specs.Stopped())).Value.VmId!.Value;
        var definition = Path.Combine(_agent.DataDir, "vms", $"{vmId}.json");
        Assert.True(File.Exists(definition));
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateImageAsync(new ImageSpec { Name = "secret.img", SourcePath = definition }));

        Assert.Equal(["source_path"], e.Errors.Select(x => x.Attribute));
    }

    [Theory]
    [InlineData("/v1/images/default/..%2F..%2Ftoken", HttpStatusCode.UnprocessableEntity)]
    [InlineData("/v1/images/default/.images", HttpStatusCode.UnprocessableEntity)]
    [InlineData("/v1/images/Bad%2Fpool/x.img", HttpStatusCode.UnprocessableEntity)]
    [InlineData("/v1/images/default/none.img", HttpStatusCode.NotFound)]
    [InlineData("/v1/images/other/none.img", HttpStatusCode.NotFound)]
    public async Task PathsThatEscapeOrNameNothingAreRefused(string path, HttpStatusCode expected)
    {
        using var http = _agent.RawClient();
        Assert.Equal(expected, (await http.GetAsync(path)).StatusCode);
        Assert.Equal(expected, (await http.DeleteAsync(path)).StatusCode);
    }

    private async Task<byte[]> CompressAsync(string kind)
    {
        var plain = _dir.Sub($"plain-{kind}-{Guid.NewGuid():N}.raw");
        await File.WriteAllBytesAsync(plain, _raw);
        switch (kind)
        {
            case "gz":
                using (var output = new MemoryStream())
                {
                    using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
                        gzip.Write(_raw);
                    return output.ToArray();
                }
            case "xz":
                await _runner.RunCheckedAsync("xz", "--keep", "--quiet", plain);
                return await File.ReadAllBytesAsync(plain + ".xz");
            case "zst":
                await _runner.RunCheckedAsync("zstd", "--quiet", plain, "-o", plain + ".zst");
                return await File.ReadAllBytesAsync(plain + ".zst");
            case "bz2":
                await _runner.RunCheckedAsync("bzip2", "--keep", "--quiet", plain);
                return await File.ReadAllBytesAsync(plain + ".bz2");
            default:
                throw new ArgumentException(kind, nameof(kind));
        }
    }
}
