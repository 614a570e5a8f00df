using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>
/// The pure half of a resource's lifecycle, shared by every resource: model JSON ⇄ records, validation
/// with attribute paths, ids. Subclasses add the agent calls.
/// </summary>
public abstract class ModelOperations<TModel, TSpec>(string idAttribute) : IResourceOperations
    where TSpec : class
    where TModel : class, TSpec
{
    /// <summary>Reads the agent's (or Terraform's) full model JSON, ignoring fields a newer agent added.</summary>
    protected static readonly JsonSerializerOptions Lenient = new(ModelJson.Options) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };

    /// <inheritdoc />
    public Type ModelType => typeof(TModel);

    /// <inheritdoc />
    public IReadOnlyList<ValidationError> Validate(JsonObject config)
    {
        if (!TryRead<TSpec>(config, ModelJson.Options, out var spec, out var error))
            return [error];
        return Validator.Validate(spec);
    }

    /// <inheritdoc />
    public IReadOnlyList<ValidationError> ValidateUpdate(JsonObject prior, JsonObject config)
    {
        if (!TryRead<TModel>(prior, Lenient, out var before, out _) || !TryRead<TSpec>(config, Lenient, out var after, out _))
            return [];
        return ValidateUpdate(before, after);
    }

    /// <summary>Rules that compare an update with the current resource.</summary>
    protected virtual IReadOnlyList<ValidationError> ValidateUpdate(TModel before, TSpec after) => (before, after) switch
    {
        (VmSpec b, VmSpec a) => a.ValidateUpdate(b),
        (VolumeSpec b, VolumeSpec a) => a.ValidateUpdate(b),
        _ => [],
    };

    /// <summary>The model attribute that identifies the resource on its host.</summary>
    public string IdAttribute => idAttribute;

    /// <inheritdoc />
    public virtual string IdOf(JsonObject state) => state[idAttribute] switch
    {
        null => throw new InvalidOperationException($"the state has no {idAttribute}"),
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var node => node.ToJsonString(),
    };

    /// <inheritdoc />
    public abstract Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken);

    /// <inheritdoc />
    public abstract Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken);

    /// <inheritdoc />
    public abstract Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken);

    /// <inheritdoc />
    public abstract Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken);

    /// <summary>The user-set part of a configuration.</summary>
    protected static TSpec SpecOf(JsonObject config) =>
        TryRead<TSpec>(config, ModelJson.Options, out var spec, out var error) ? spec : throw new ModelValidationException([error]);

    /// <summary>A full model record (state, or what the agent returned).</summary>
    protected static TModel ModelOf(JsonObject state) =>
        TryRead<TModel>(state, Lenient, out var model, out var error) ? model : throw new ModelValidationException([error]);

    /// <summary>A record as model JSON.</summary>
    protected static JsonObject ToJson(TModel model) =>
        (JsonObject)JsonSerializer.SerializeToNode(model, typeof(TModel), ModelJson.Options)!;

    /// <summary>Throws when <paramref name="errors"/> is not empty.</summary>
    protected static void ThrowIfInvalid(IReadOnlyList<ValidationError> errors)
    {
        if (errors.Count > 0)
            throw new ModelValidationException(errors);
    }

    private static bool TryRead<T>(JsonObject json, JsonSerializerOptions options, out T value, out ValidationError error) where T : class
    {
        try
        {
            value = (T)json.Deserialize(typeof(T), options)!;
            error = null!;
            return true;
        }
        catch (JsonException e)
        {
            value = null!;
            error = JsonErrors.ToValidationError(e, Schemas.For<T>());
            return false;
        }
    }
}

/// <summary>Input the model rejects, keyed by attribute path; plugins turn each error into a diagnostic.</summary>
public sealed class ModelValidationException(IReadOnlyList<ValidationError> errors)
    : Exception(string.Join("; ", errors.Select(e => e.ToString())))
{
    /// <summary>The errors.</summary>
    public IReadOnlyList<ValidationError> Errors { get; } = errors;
}

/// <summary>Turns a System.Text.Json failure into a model validation error at the attribute it concerns.</summary>
public static class JsonErrors
{
    /// <summary>The error, with <c>$.disks.scsi0.size_gib</c> rendered as <c>disks["scsi0"].size_gib</c>.</summary>
    public static ValidationError ToValidationError(JsonException e, ObjectSchema root)
    {
        var path = AttrPath.Root;
        SchemaType? type = new(ValueKind.Object, Object: root);
        var segments = (e.Path ?? "$").TrimStart('$').Split('.', StringSplitOptions.RemoveEmptyEntries);
        foreach (var segment in segments)
        {
            var bracket = segment.IndexOf('[', StringComparison.Ordinal);
            var name = bracket >= 0 ? segment[..bracket] : segment;
            if (type?.Kind == ValueKind.Object)
            {
                var attribute = type.Object!.Find(name);
                path = path.Attr(name);
                type = attribute?.Type;
            }
            else if (type?.Kind == ValueKind.Map)
            {
                path = path.Key(name);
                type = type.Element;
            }
            else
            {
                path = path.Attr(name);
                type = null;
            }
            if (bracket >= 0 && int.TryParse(segment[(bracket + 1)..].TrimEnd(']'), out var index))
            {
                path = path.At(index);
                type = type?.Element;
            }
        }
        var expected = type?.Kind switch
        {
            ValueKind.Integer => "a whole number",
            ValueKind.Number => "a number",
            ValueKind.String => "a string",
            ValueKind.Bool => "true or false",
            ValueKind.List or ValueKind.Set => "a list",
            ValueKind.Map or ValueKind.Object => "an object",
            _ => null,
        };
        var detail = expected is null ? "is not a setting of this resource or has the wrong type." : $"must be {expected}.";
        return new ValidationError(path.ToString(), detail);
    }
}
