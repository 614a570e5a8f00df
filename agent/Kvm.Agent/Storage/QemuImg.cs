using System.Globalization;
using System.Text.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;

namespace Kvm.Agent.Storage;

/// <summary>What <c>qemu-img info</c> says about an image.</summary>
public sealed record ImageInfo(string Format, long VirtualSize, long ActualSize, string? BackingFile)
{
    /// <summary>A qcow2 external data file: another host file the image reads and writes.</summary>
    public string? DataFile { get; init; }
}

/// <summary>
/// qemu-img, the only tool that writes image files: create, info and resize as argv arrays with timeouts.
/// Creates never replace an existing file, because <c>qemu-img create</c> silently does (DESIGN §6).
/// </summary>
public sealed class QemuImg(ICommandRunner runner, StorageOptions options)
{
    /// <summary>Formats qemu-img may create for the agent.</summary>
    public static readonly IReadOnlySet<string> Formats = new HashSet<string>(StringComparer.Ordinal) { "qcow2", "raw", "vmdk" };

    /// <summary>
    /// Creates a new image at <paramref name="path"/>. Returns false, touching nothing, when something already
    /// has that name. The image is made under a temp name and moved into place only if the name is still
    /// free, so neither a concurrent create nor a failure (a full disk) leaves a partial file at the target.
    /// </summary>
    public async Task<bool> CreateAsync(string path, string format, long sizeBytes, string preallocation, CancellationToken cancellationToken)
    {
        if (!Formats.Contains(format))
            throw new ArgumentException($"Unsupported image format '{format}'.", nameof(format));
        if (SafeFile.EntryExists(path))
            return false;
        var temp = SafeFile.TempPathFor(path);
        var moved = false;
        try
        {
            List<string> argv = [options.QemuImgBinary, "create", "-q", "-f", format];
            if (preallocation != "off")
                argv.AddRange(["-o", "preallocation=" + preallocation]);
            argv.AddRange([temp, sizeBytes.ToString(CultureInfo.InvariantCulture)]);
            var result = await RunAsync(argv, options.WriteTimeout, "create", cancellationToken);
            if (!result.Ok)
            {
                if (IsNoSpace(result.StdErr))
                    throw AgentProblemException.NoSpace(
                        $"Not enough space in {Path.GetDirectoryName(path)} for {Path.GetFileName(path)} " +
                        $"({GiB(sizeBytes)}, {format}, preallocation {preallocation}): {Last(result.StdErr.Replace(temp, path, StringComparison.Ordinal))}");
                throw AgentProblemException.HostCommand($"qemu-img create of {Path.GetFileName(path)} failed: {Last(result.StdErr.Replace(temp, path, StringComparison.Ordinal))}");
            }
            moved = SafeFile.MoveNoReplace(temp, path);
            if (moved)
                SafeFile.FsyncDirectory(Path.GetDirectoryName(path)!);
            return moved;
        }
        finally
        {
            if (!moved)
                SafeFile.DeleteQuietly(temp);
        }
    }

    /// <summary>
    /// Makes a new disk at <paramref name="path"/> from an image: a full copy in <paramref name="format"/>, or a qcow2
    /// overlay whose backing file is the image (<paramref name="linked"/>), grown to <paramref name="sizeBytes"/> when
    /// larger than the image. Same no-replace contract as <see cref="CreateAsync"/>: false, touching nothing, when
    /// the name is taken.
    /// </summary>
    public async Task<bool> CreateFromImageAsync(string path, string format, string imagePath, string imageFormat, bool linked, long? sizeBytes,
        CancellationToken cancellationToken)
    {
        if (!Formats.Contains(format) || (linked && format != "qcow2"))
            throw new ArgumentException($"Unsupported image format '{format}'{(linked ? " for a linked clone" : "")}.", nameof(format));
        if (SafeFile.EntryExists(path))
            return false;
        var temp = SafeFile.TempPathFor(path);
        var moved = false;
        try
        {
            IReadOnlyList<string> argv = linked
                ? [options.QemuImgBinary, "create", "-q", "-f", "qcow2", "-b", imagePath, "-F", imageFormat, temp]
                : [options.QemuImgBinary, "convert", "-q", "-f", imageFormat, "-O", format, imagePath, temp];
            var verb = linked ? "create" : "convert";
            var result = await RunAsync(argv, options.WriteTimeout, verb, cancellationToken);
            if (!result.Ok)
            {
                var message = Last(result.StdErr.Replace(temp, path, StringComparison.Ordinal));
                if (IsNoSpace(result.StdErr))
                    throw AgentProblemException.NoSpace($"Not enough space in {Path.GetDirectoryName(path)} for {Path.GetFileName(path)} from {Path.GetFileName(imagePath)}: {message}");
                throw AgentProblemException.HostCommand($"qemu-img {verb} of {Path.GetFileName(path)} from {Path.GetFileName(imagePath)} failed: {message}");
            }
            if (sizeBytes is { } bytes && (await InfoAsync(temp, format, cancellationToken)).VirtualSize < bytes)
                await ResizeAsync(temp, format, bytes, null, cancellationToken);
            moved = SafeFile.MoveNoReplace(temp, path);
            if (moved)
                SafeFile.FsyncDirectory(Path.GetDirectoryName(path)!);
            return moved;
        }
        finally
        {
            if (!moved)
                SafeFile.DeleteQuietly(temp);
        }
    }

    /// <summary>Converts <paramref name="source"/> into a new file <paramref name="target"/> the caller owns (a temp name).</summary>
    /// <remarks><paramref name="targetExists"/>: write into an existing target (a logical volume) with <c>-n</c>, never creating one.</remarks>
    public async Task ConvertAsync(string source, string sourceFormat, string target, string targetFormat, CancellationToken cancellationToken, bool targetExists = false)
    {
        var result = await RunAsync(targetExists
                ? [options.QemuImgBinary, "convert", "-q", "-n", "-f", sourceFormat, "-O", targetFormat, source, target]
                : [options.QemuImgBinary, "convert", "-q", "-f", sourceFormat, "-O", targetFormat, source, target],
            options.WriteTimeout, "convert", cancellationToken);
        if (result.Ok)
            return;
        if (IsNoSpace(result.StdErr))
            throw AgentProblemException.NoSpace($"Not enough space in {Path.GetDirectoryName(target)} to convert to {targetFormat}: {Last(result.StdErr)}");
        throw AgentProblemException.HostCommand($"qemu-img convert to {targetFormat} failed: {Last(result.StdErr)}");
    }

    /// <summary>
    /// Reads an image's format and sizes. Pass <paramref name="format"/> whenever it is known: probing lets a
    /// guest that wrote a qcow2 header into a raw disk choose a backing file on the host.
    /// </summary>
    public async Task<ImageInfo> InfoAsync(string path, string? format, CancellationToken cancellationToken)
    {
        // -U: a running VM holds the write lock; info only reads the header.
        List<string> argv = [options.QemuImgBinary, "info", "-U", "--output=json"];
        if (format is not null)
            argv.AddRange(["-f", format]);
        argv.Add(path);
        var result = await RunAsync(argv, options.InfoTimeout, "info", cancellationToken);
        if (!result.Ok)
            throw AgentProblemException.HostCommand($"qemu-img info of {Path.GetFileName(path)} failed: {Last(result.StdErr)}");
        try
        {
            using var json = JsonDocument.Parse(result.StdOut);
            var root = json.RootElement;
            return new ImageInfo(
                root.GetProperty("format").GetString()!,
                root.GetProperty("virtual-size").GetInt64(),
                root.TryGetProperty("actual-size", out var actual) ? actual.GetInt64() : 0,
                root.TryGetProperty("full-backing-filename", out var full) ? full.GetString()
                    : root.TryGetProperty("backing-filename", out var backing) ? backing.GetString() : null)
            {
                DataFile = root.TryGetProperty("format-specific", out var specific) && specific.TryGetProperty("data", out var data)
                    && data.ValueKind == JsonValueKind.Object && data.TryGetProperty("data-file", out var dataFile) ? dataFile.GetString() : null,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw AgentProblemException.HostCommand($"qemu-img info of {Path.GetFileName(path)} printed unexpected output: {e.Message}");
        }
    }

    /// <summary>Grows an image that no running process holds to <paramref name="sizeBytes"/> (qemu-img refuses to shrink without --shrink).</summary>
    public async Task ResizeAsync(string path, string format, long sizeBytes, string? preallocation, CancellationToken cancellationToken)
    {
        List<string> argv = [options.QemuImgBinary, "resize", "-q", "-f", format];
        if (preallocation is not null and not "off")
            argv.Add("--preallocation=" + preallocation);
        argv.AddRange([path, sizeBytes.ToString(CultureInfo.InvariantCulture)]);
        var result = await RunAsync(argv, options.WriteTimeout, "resize", cancellationToken);
        if (result.Ok)
            return;
        if (IsNoSpace(result.StdErr))
            throw AgentProblemException.NoSpace($"Not enough space in {Path.GetDirectoryName(path)} to grow {Path.GetFileName(path)} to {GiB(sizeBytes)}: {Last(result.StdErr)}");
        if (result.StdErr.Contains("lock", StringComparison.OrdinalIgnoreCase))
            throw AgentProblemException.InvalidState($"{Path.GetFileName(path)} is in use by a running process; it can only grow offline or through its VM: {Last(result.StdErr)}");
        throw AgentProblemException.HostCommand($"qemu-img resize of {Path.GetFileName(path)} failed: {Last(result.StdErr)}");
    }

    private async Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, string verb, CancellationToken cancellationToken)
    {
        try
        {
            return await runner.RunAsync(argv, timeout, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw AgentProblemException.HostCommand($"qemu-img {verb} did not finish within {timeout.TotalSeconds:0} s.");
        }
    }

    private static bool IsNoSpace(string stderr) =>
        stderr.Contains("No space left", StringComparison.OrdinalIgnoreCase) || stderr.Contains("ENOSPC", StringComparison.Ordinal);

    private static string Last(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : lines[^1];
    }

    private static string GiB(long bytes) => (bytes / (double)(1L << 30)).ToString("0.##", CultureInfo.InvariantCulture) + " GiB";
}
