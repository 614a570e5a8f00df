using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>An image the user wants imported into a pool.</summary>
public class ImageSpec : IValidatable
{
    /// <summary>Name.</summary>
    [Setting("Name of the image in its pool, e.g. `debian-13.qcow2`; disks refer to it as `<pool>/<name>`.", Required = true,
        Pattern = Patterns.VolumeName, PatternText = Patterns.VolumeNameText, Update = UpdateKind.Replace)]
    public string? Name { get; set; }

    /// <summary>Pool.</summary>
    [Setting("Storage pool that holds the image.", Default = "default", Pattern = Patterns.PoolName, PatternText = Patterns.PoolNameText, Update = UpdateKind.Replace)]
    public string? Pool { get; set; }

    /// <summary>Source URL.</summary>
    [Setting("http(s) URL the agent downloads the image from (streamed to the host; no SSH). Exactly one of `url` and `source_path`.",
        Pattern = "https?://[^\\s]+", PatternText = "an http:// or https:// URL", MaxLength = 2048, Update = UpdateKind.Replace)]
    public string? Url { get; set; }

    /// <summary>Source file on the host.</summary>
    [Setting("Absolute path of a file already on the host to copy the image from (the file stays). Exactly one of `url` and `source_path`.",
        Pattern = Patterns.AbsolutePath, PatternText = "an absolute path", MaxLength = 1024, Update = UpdateKind.Replace)]
    public string? SourcePath { get; set; }

    /// <summary>Expected checksum.</summary>
    [Setting("Expected hex digest of the downloaded (still compressed) bytes; a mismatch fails the import and leaves nothing behind.",
        Pattern = "[0-9A-Fa-f]{64}|[0-9A-Fa-f]{128}", PatternText = "a hex sha256 (64 digits) or sha512 (128 digits) digest", Update = UpdateKind.Replace)]
    public string? Checksum { get; set; }

    /// <summary>Checksum algorithm.</summary>
    [Setting("Algorithm of `checksum`: `sha256` or `sha512`.", Default = "sha256", OneOf = ["sha256", "sha512"], Update = UpdateKind.Replace)]
    public string? ChecksumAlgorithm { get; set; }

    /// <summary>Decompression.</summary>
    [Setting("Decompression of the downloaded bytes: `none`, `gz`, `xz`, `zst` or `bz2`.",
        DefaultText = "by the suffix of the URL or file (`.gz`, `.xz`, `.zst`, `.bz2`), else `none`",
        OneOf = ["none", "gz", "xz", "zst", "bz2"], Update = UpdateKind.Replace)]
    public string? Decompression { get; set; }

    /// <summary>Target format.</summary>
    [Setting("Convert the image to `qcow2` or `raw` when imported; unset keeps the format `qemu-img info` detects.",
        OneOf = ["qcow2", "raw"], Update = UpdateKind.Replace)]
    public string? ConvertTo { get; set; }

    /// <summary>The decompression that applies: the setting, else the source's suffix.</summary>
    public string EffectiveDecompression()
    {
        if (Decompression is not null)
            return Decompression;
        var source = Url is not null && Uri.TryCreate(Url, UriKind.Absolute, out var uri) ? uri.AbsolutePath : SourcePath ?? "";
        return Path.GetExtension(source).ToLowerInvariant() switch
        {
            ".gz" => "gz",
            ".xz" => "xz",
            ".zst" => "zst",
            ".bz2" => "bz2",
            _ => "none",
        };
    }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if ((Url is null) == (SourcePath is null))
            context.Add(path.Attr(Url is null ? "url" : "source_path"), "set exactly one of `url` and `source_path`.");
        if (Url is not null && !(Uri.TryCreate(Url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0))
            context.Add(path.Attr("url"), "is not an absolute http:// or https:// URL.");
        var digits = (ChecksumAlgorithm ?? "sha256") == "sha512" ? 128 : 64;
        if (Checksum is not null && Checksum.Length != digits && Validator.Matches("[0-9A-Fa-f]+", Checksum))
            context.Add(path.Attr("checksum"), $"a {ChecksumAlgorithm ?? "sha256"} digest has {digits} hex digits, not {Checksum.Length}.");
        if (ChecksumAlgorithm is not null && Checksum is null)
            context.Add(path.Attr("checksum_algorithm"), "applies only with `checksum`.");
    }
}

/// <summary>An image as the agent reports it.</summary>
[Resource("image", "A read-only base image in a storage pool, imported from an http(s) URL or a file on the host. " +
    "Disks start from it by `image_id`, as a full copy or a linked clone; it cannot be deleted while linked clones use it.")]
public sealed class Image : ImageSpec
{
    /// <summary>Id.</summary>
    [Setting("Image reference used by disks: `<pool>/<name>`.", ReadOnly = true)]
    public string? ImageId { get; set; }

    /// <summary>Path.</summary>
    [Setting("Host path of the image file (read-only).", ReadOnly = true)]
    public string? Path { get; set; }

    /// <summary>Format.</summary>
    [Setting("Format of the stored image, as `qemu-img info` detects it (after `convert_to`).", ReadOnly = true)]
    public string? Format { get; set; }

    /// <summary>Virtual size.</summary>
    [Setting("Virtual size in bytes: the smallest disk made from the image.", ReadOnly = true)]
    public long? VirtualSizeBytes { get; set; }

    /// <summary>File size.</summary>
    [Setting("Bytes the image occupies on the host.", ReadOnly = true)]
    public long? SizeBytes { get; set; }

    /// <summary>Digest of the stored file.</summary>
    [Setting("sha256 of the stored image file (after decompression and conversion).", ReadOnly = true)]
    public string? Sha256 { get; set; }

    /// <summary>Linked clones.</summary>
    [Setting("VM disk slots that are linked clones of the image, as `<vm_id>/<slot>`; while any exist the image cannot be deleted.", ReadOnly = true)]
    public List<string>? UsedBy { get; set; }

    /// <summary>The user-set part only.</summary>
    public ImageSpec ToSpec() => new()
    {
        Name = Name, Pool = Pool, Url = Url, SourcePath = SourcePath, Checksum = Checksum,
        ChecksumAlgorithm = ChecksumAlgorithm, Decompression = Decompression, ConvertTo = ConvertTo,
    };
}
