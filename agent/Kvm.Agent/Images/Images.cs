using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Images;

/// <summary>A stored image as VM disks use it.</summary>
public sealed record ImageFile(string ImageId, string Path, string Format, long VirtualSize);

/// <summary>
/// Read-only base images. The file lives at <c>&lt;pool&gt;/.images/&lt;name&gt;</c> (a name no volume can have, so the
/// volume API never lists, overwrites or deletes an image), mode 0444; what the user set and what the import found
/// (format, sizes, sha256) are kept in <c>&lt;data-dir&gt;/images/&lt;pool&gt;/&lt;name&gt;.json</c>. An import works on
/// temp names in the same directory and moves the finished file into place without replacing anything, so a
/// failed, mismatched or cancelled import leaves nothing behind.
/// </summary>
public sealed class Images : IDisposable
{
    /// <summary>Directory inside a pool that holds its images.</summary>
    public const string PoolSubdirectory = ".images";

    private const UnixFileMode ReadOnlyMode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly StoragePools _pools;
    private readonly QemuImg _qemuImg;
    private readonly StorageOptions _storage;
    private readonly ImageOptions _options;
    private readonly ICommandRunner _runner;
    private readonly IServiceProvider _services;
    private readonly HttpClient _http;
    private readonly KeyedLocks _locks = new();

    /// <summary>Creates the feature over the storage pools.</summary>
    public Images(StoragePools pools, QemuImg qemuImg, StorageOptions storage, ImageOptions options, ICommandRunner runner, IServiceProvider services)
    {
        _pools = pools;
        _qemuImg = qemuImg;
        _storage = storage;
        _options = options;
        _runner = runner;
        _services = services;
        // The checksum covers the bytes the server sends, so no transparent Content-Encoding decompression.
        _http = new HttpClient(new SocketsHttpHandler
        {
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            ConnectTimeout = options.ConnectTimeout,
            MaxAutomaticRedirections = 5,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Every image, or those of one pool.</summary>
    public List<Image> List(string? pool)
    {
        IEnumerable<PoolDir> selected = _pools.All();
        if (pool is not null)
        {
            StoragePools.CheckName(pool, "pool");
            selected = [_pools.Find(pool) ?? throw AgentProblemException.NotFound($"No storage pool named \"{pool}\".")];
        }
        var linked = LinkedClones();
        var result = new List<Image>();
        foreach (var p in selected)
        {
            var dir = Path.Combine(DefinitionsDir, p.Name);
            if (!Directory.Exists(dir))
                continue;
            foreach (var definition in Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileNameWithoutExtension(definition);
                if (Validator.Matches(Patterns.VolumeName, name) && Load(p, name) is { } image)
                    result.Add(Describe(image, linked));
            }
        }
        return result;
    }

    /// <summary>One image.</summary>
    public Image Get(string pool, string name)
    {
        var p = Locate(pool, name);
        var image = Load(p, name) ?? throw AgentProblemException.NotFound($"No image \"{pool}/{name}\".");
        return Describe(image, LinkedClones());
    }

    /// <summary>The image a disk refers to by <c>image_id</c>, or null when there is none.</summary>
    public ImageFile? Find(string imageId)
    {
        var slash = imageId.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !Validator.Matches(Patterns.VolumeId, imageId) || _pools.Find(imageId[..slash]) is not { } pool)
            return null;
        return Load(pool, imageId[(slash + 1)..]) is { } image
            ? new ImageFile(image.ImageId!, image.Path!, image.Format!, image.VirtualSizeBytes!.Value)
            : null;
    }

    /// <summary>Imports an image from its URL or host file; synchronous, bounded by <see cref="ImageOptions.ImportTimeout"/>.</summary>
    public async Task<Image> ImportAsync(ImageSpec spec, CancellationToken cancellationToken)
    {
        var errors = Validator.Validate(spec);
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
        var effective = Defaults.Apply(spec);
        var name = effective.Name!;
        var pool = _pools.Find(effective.Pool) ?? throw AgentProblemException.Invalid("pool", $"No storage pool named \"{effective.Pool}\".");
        if (pool.Spec.Type == "lvm-thin" || !StoragePools.IsReady(pool))
            throw AgentProblemException.Invalid("pool", pool.Spec.Type == "lvm-thin"
                ? $"storage pool \"{pool.Name}\" is lvm-thin, which holds raw disks only; keep images in a dir or nfs pool."
                : $"nfs storage pool \"{pool.Name}\" is not mounted at {pool.Path}.");
        var directory = ImagesDir(pool);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        using var held = await _locks.AcquireAsync(path, cancellationToken);
        if (SafeFile.EntryExists(path) || File.Exists(DefinitionPath(pool.Name, name)))
            throw AgentProblemException.Conflict($"Image \"{pool.Name}/{name}\" exists already.");

        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(_options.ImportTimeout);
        var token = bounded.Token;
        var temps = new List<string>();
        try
        {
            var decompression = spec.EffectiveDecompression();
            var raw = SafeFile.TempPathFor(path);
            // xz and bzip2 name their output after the input minus its suffix: the download carries the suffix.
            var download = decompression == "none" ? raw : raw + "." + decompression;
            temps.Add(download);
            var algorithm = effective.ChecksumAlgorithm!;
            var digests = effective.Url is not null
                ? await DownloadAsync(effective.Url, download, algorithm, token)
                : await CopySourceAsync(effective.SourcePath!, download, algorithm, token);
            if (effective.Checksum is { } expected && !string.Equals(expected, digests.Checksum, StringComparison.OrdinalIgnoreCase))
                throw AgentProblemException.Invalid("checksum",
                    $"the downloaded bytes have {algorithm} {digests.Checksum}, not {expected.ToLowerInvariant()}; nothing was stored.");
            if (decompression != "none")
            {
                temps.Add(raw);
                await DecompressAsync(decompression, download, raw, token);
                SafeFile.DeleteQuietly(download);
            }

            var info = await _qemuImg.InfoAsync(raw, null, token);
            // A downloaded qcow2 names its backing or data file itself: following it would hand host files to guests.
            if (info.BackingFile is not null || info.DataFile is not null)
                throw AgentProblemException.Invalid(effective.Url is not null ? "url" : "source_path",
                    $"the image refers to another file ({info.BackingFile ?? info.DataFile}); images with a backing or external data file are refused.");
            var stored = raw;
            if (effective.ConvertTo is { } target && target != info.Format)
            {
                stored = SafeFile.TempPathFor(path);
                temps.Add(stored);
                await _qemuImg.ConvertAsync(raw, info.Format, stored, target, token);
                SafeFile.DeleteQuietly(raw);
                info = await _qemuImg.InfoAsync(stored, target, token);
            }
            var sha256 = stored == download ? digests.Sha256 : await HashFileAsync(stored, token);
            using (var flush = new FileStream(stored, FileMode.Open, FileAccess.ReadWrite))
                flush.Flush(flushToDisk: true);
            File.SetUnixFileMode(stored, ReadOnlyMode);

            var image = new Image
            {
                Name = spec.Name, Pool = spec.Pool, Url = spec.Url, SourcePath = spec.SourcePath, Checksum = spec.Checksum,
                ChecksumAlgorithm = spec.ChecksumAlgorithm, Decompression = spec.Decompression, ConvertTo = spec.ConvertTo,
                ImageId = pool.Name + "/" + name,
                Path = path,
                Format = info.Format,
                VirtualSizeBytes = info.VirtualSize,
                SizeBytes = new FileInfo(stored).Length,
                Sha256 = sha256,
            };
            if (!SafeFile.MoveNoReplace(stored, path))
                throw AgentProblemException.Conflict($"Image \"{pool.Name}/{name}\" exists already.");
            temps.Remove(stored);
            SafeFile.FsyncDirectory(directory);
            try
            {
                SafeFile.WriteAtomic(DefinitionPath(pool.Name, name), JsonSerializer.SerializeToUtf8Bytes(image, ModelJsonContext.Default.Image));
            }
            catch
            {
                SafeFile.DeleteQuietly(path);
                throw;
            }
            return Describe(image, LinkedClones());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw AgentProblemException.HostCommand($"The import of \"{pool.Name}/{name}\" did not finish within {_options.ImportTimeout}; nothing was stored.");
        }
        catch (Exception e) when (SafeFile.IsNoSpace(e))
        {
            throw AgentProblemException.NoSpace($"Storage pool \"{pool.Name}\" ran out of space importing \"{name}\"; nothing was stored.");
        }
        finally
        {
            foreach (var temp in temps)
                SafeFile.DeleteQuietly(temp);
        }
    }

    /// <summary>Deletes an image no linked clone uses; full copies do not depend on it.</summary>
    public async Task DeleteAsync(string pool, string name, CancellationToken cancellationToken)
    {
        var p = Locate(pool, name);
        var path = Path.Combine(ImagesDir(p), name);
        using var held = await _locks.AcquireAsync(path, cancellationToken);
        var definition = DefinitionPath(p.Name, name);
        if (!File.Exists(definition))
            throw AgentProblemException.NotFound($"No image \"{pool}/{name}\".");
        var imageId = p.Name + "/" + name;
        var users = LinkedClones().GetValueOrDefault(imageId);
        if (users is { Count: > 0 })
            throw AgentProblemException.Conflict($"Image \"{imageId}\" is the backing file of the linked clones {string.Join(", ", users)}; delete those disks first.");
        // unlink() removes a link itself, never its target.
        if (SafeFile.EntryExists(path))
            File.Delete(path);
        SafeFile.FsyncDirectory(ImagesDir(p));
        File.Delete(definition);
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private string DefinitionsDir => Path.Combine(_storage.DataDir, "images");

    private string DefinitionPath(string pool, string name) => Path.Combine(DefinitionsDir, pool, name + ".json");

    private static string ImagesDir(PoolDir pool) => Path.Combine(pool.Path, PoolSubdirectory);

    private PoolDir Locate(string pool, string name)
    {
        StoragePools.CheckName(pool, "pool");
        if (!Validator.Matches(Patterns.VolumeName, name))
            throw AgentProblemException.Invalid("name", $"\"{Validator.Printable(name)}\" is not a valid image name: expected {Patterns.VolumeNameText}.");
        return _pools.Find(pool) ?? throw AgentProblemException.NotFound($"No storage pool named \"{pool}\".");
    }

    private Image? Load(PoolDir pool, string name)
    {
        Image? image;
        try
        {
            image = JsonSerializer.Deserialize(File.ReadAllBytes(DefinitionPath(pool.Name, name)), ModelJsonContext.Default.Image);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
        var path = Path.Combine(ImagesDir(pool), name);
        // A file that vanished, or that someone swapped for a link out of the pool, is no image of ours.
        var real = SafeFile.RealPath(path);
        if (image is null || real is null || !SafeFile.IsWithin(real, SafeFile.RealPath(ImagesDir(pool)) ?? ImagesDir(pool)) || !File.Exists(real))
            return null;
        image.Path = path;
        return image;
    }

    private static Image Describe(Image image, IReadOnlyDictionary<string, List<string>> linked)
    {
        image.UsedBy = linked.GetValueOrDefault(image.ImageId!) ?? [];
        return image;
    }

    private Dictionary<string, List<string>> LinkedClones() =>
        (_services.GetService<IImageUsage>()?.LinkedClones() ?? [])
            .GroupBy(u => u.ImageId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(u => $"{u.VmId}/{u.Slot}").Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);

    private sealed record Digests(string Checksum, string Sha256);

    private async Task<Digests> DownloadAsync(string url, string target, string algorithm, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw AgentProblemException.Invalid("url", $"cannot download {url}: {e.Message}");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
                throw AgentProblemException.Invalid("url", $"GET {url} answered {(int)response.StatusCode} {response.ReasonPhrase}; nothing was stored.");
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            try
            {
                return await CopyHashingAsync(body, target, algorithm, cancellationToken);
            }
            catch (HttpIOException e)
            {
                throw AgentProblemException.Invalid("url", $"the download from {url} broke off: {e.Message}; nothing was stored.");
            }
        }
    }

    private async Task<Digests> CopySourceAsync(string sourcePath, string target, string algorithm, CancellationToken cancellationToken)
    {
        if (sourcePath != Path.GetFullPath(sourcePath) || (sourcePath.Length > 1 && sourcePath.EndsWith('/')))
            throw AgentProblemException.Invalid("source_path", $"\"{Validator.Printable(sourcePath)}\" is not a normalised absolute path (no '.', '..', '//' or trailing '/').");
        var real = SafeFile.RealPath(sourcePath);
        if (real is null || !File.Exists(real))
            throw AgentProblemException.Invalid("source_path", $"{sourcePath} is not a file on the host.");
        // The data directory holds the token and definitions; only its pools hold images.
        var dataDir = SafeFile.RealPath(_storage.DataDir) ?? _storage.DataDir;
        if (SafeFile.IsWithin(real, dataDir) && !_pools.All().Any(p => SafeFile.IsWithin(real, SafeFile.RealPath(p.Path) ?? p.Path)))
            throw AgentProblemException.Invalid("source_path", $"{sourcePath} is inside the agent's data directory; only files of storage pools may be imported from there.");
        await using var input = new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        if (!input.CanSeek)
            throw AgentProblemException.Invalid("source_path", $"{sourcePath} is not a regular file.");
        return await CopyHashingAsync(input, target, algorithm, cancellationToken);
    }

    private static async Task<Digests> CopyHashingAsync(Stream input, string target, string algorithm, CancellationToken cancellationToken)
    {
        using var checksum = IncrementalHash.CreateHash(algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256);
        using var sha256 = algorithm == "sha512" ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        await using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
        {
            checksum.AppendData(buffer, 0, read);
            sha256?.AppendData(buffer, 0, read);
            await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
        await output.FlushAsync(cancellationToken);
        var checksumHex = Convert.ToHexStringLower(checksum.GetHashAndReset());
        return new Digests(checksumHex, sha256 is null ? checksumHex : Convert.ToHexStringLower(sha256.GetHashAndReset()));
    }

    private static async Task<string> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(input, cancellationToken));
    }

    private async Task DecompressAsync(string kind, string input, string output, CancellationToken cancellationToken)
    {
        if (kind == "gz")
        {
            try
            {
                await using var compressed = new FileStream(input, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
                await using var gzip = new GZipStream(compressed, CompressionMode.Decompress);
                await using var plain = new FileStream(output, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true);
                await gzip.CopyToAsync(plain, cancellationToken);
            }
            catch (InvalidDataException e)
            {
                throw AgentProblemException.Invalid("decompression", $"the download is not valid gz data ({e.Message}); nothing was stored.");
            }
            return;
        }
        // Paths are absolute (they start with '/'), so no file name can be read as an option.
        IReadOnlyList<string> argv = kind switch
        {
            "xz" => [_options.XzBinary, "--decompress", "--keep", "--quiet", input],
            "bz2" => [_options.Bzip2Binary, "--decompress", "--keep", "--quiet", input],
            "zst" => [_options.ZstdBinary, "--decompress", "--quiet", "-o", output, input],
            _ => throw new ArgumentException($"Unknown decompression '{kind}'.", nameof(kind)),
        };
        CommandResult result;
        try
        {
            result = await _runner.RunAsync(argv, _options.ImportTimeout, cancellationToken);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or FileNotFoundException)
        {
            throw AgentProblemException.HostCommand($"{argv[0]} is not installed on the host ({e.Message}); install the Debian package that provides it.");
        }
        if (!result.Ok || !File.Exists(output))
        {
            var message = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "(no message)";
            throw AgentProblemException.Invalid("decompression", $"{Path.GetFileName(argv[0])} could not decompress the download as {kind}: {message.Replace(input, "the download", StringComparison.Ordinal)}; nothing was stored.");
        }
    }
}
