namespace Kvm.Agent.Images;

/// <summary>How the image feature imports: its time bound and the Debian decompressors it runs.</summary>
public sealed class ImageOptions
{
    /// <summary>Bound on one import (download, decompression, conversion), which runs inside its request.</summary>
    public TimeSpan ImportTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Bound on connecting to the image's server.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>xz (Debian xz-utils).</summary>
    public string XzBinary { get; init; } = "xz";

    /// <summary>zstd (Debian zstd).</summary>
    public string ZstdBinary { get; init; } = "zstd";

    /// <summary>bzip2 (Debian bzip2).</summary>
    public string Bzip2Binary { get; init; } = "bzip2";
}
