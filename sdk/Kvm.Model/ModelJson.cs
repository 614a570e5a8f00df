using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Kvm.Model;

/// <summary>The JSON contract: snake_case names equal to the HCL attribute names, nulls omitted, unknown properties refused.</summary>
public static class ModelJson
{
    /// <summary>Options every component uses for model JSON.</summary>
    public static JsonSerializerOptions Options { get; } = new(ModelJsonContext.Default.Options);

    /// <summary>Options for display: indented.</summary>
    public static JsonSerializerOptions Indented { get; } = new(ModelJsonContext.Default.Options) { WriteIndented = true };
}

/// <summary>Source-generated serializers for the model (fast start-up in the plugins).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(VmSpec))]
[JsonSerializable(typeof(Vm))]
[JsonSerializable(typeof(List<Vm>))]
[JsonSerializable(typeof(VmUpdateResult))]
[JsonSerializable(typeof(VolumeSpec))]
[JsonSerializable(typeof(Volume))]
[JsonSerializable(typeof(List<Volume>))]
[JsonSerializable(typeof(ImageSpec))]
[JsonSerializable(typeof(Image))]
[JsonSerializable(typeof(List<Image>))]
[JsonSerializable(typeof(StoragePoolSpec))]
[JsonSerializable(typeof(StoragePool))]
[JsonSerializable(typeof(List<StoragePool>))]
[JsonSerializable(typeof(NetworkSpec))]
[JsonSerializable(typeof(Network))]
[JsonSerializable(typeof(List<Network>))]
[JsonSerializable(typeof(SnapshotSpec))]
[JsonSerializable(typeof(Snapshot))]
[JsonSerializable(typeof(List<Snapshot>))]
[JsonSerializable(typeof(HostInfo))]
[JsonSerializable(typeof(HostDeviceInventory))]
[JsonSerializable(typeof(VmAddresses))]
[JsonSerializable(typeof(Problem))]
public sealed partial class ModelJsonContext : JsonSerializerContext;
