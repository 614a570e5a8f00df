using System.Net;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>Standalone volumes: create (idempotent), grow in place, delete; id <c>pool/name</c>.</summary>
public sealed class VolumeOperations(IAgentClients agents) : ModelOperations<Volume, VolumeSpec>("volume_id")
{
    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        var key = Guid.NewGuid().ToString("N");
        var created = await Retry.TransientAsync(() => client.CreateVolumeAsync(spec, key, cancellationToken), cancellationToken).ConfigureAwait(false);
        var (pool, name) = Split(created.Value.VolumeId ?? $"{spec.Pool ?? "default"}/{spec.Name}");
        return ToJson((await client.GetVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        var (pool, name) = Split(id);
        try
        {
            return ToJson((await agents.For(host).GetVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        var (pool, name) = Split(id);
        for (var attempt = 0; ; attempt++)
        {
            var current = await client.GetVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false);
            ThrowIfInvalid(spec.ValidateUpdate(current.Value));
            try
            {
                await client.UpdateVolumeAsync(pool, name, spec, current.ETag, cancellationToken).ConfigureAwait(false);
            }
            catch (KvmApiException e) when (e.Status == HttpStatusCode.PreconditionFailed && attempt < 3)
            {
                continue;
            }
            return ToJson((await client.GetVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
        }
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        var (pool, name) = Split(id);
        try
        {
            await agents.For(host).DeleteVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // Already gone.
        }
    }

    private static (string Pool, string Name) Split(string id) => PoolScopedId.Split(id, "volume_id", "a volume ID");
}

/// <summary>Storage pools: every setting is create-only, so an update only reads back.</summary>
public sealed class StoragePoolOperations(IAgentClients agents) : ModelOperations<StoragePool, StoragePoolSpec>("name")
{
    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        await client.CreateStoragePoolAsync(spec, cancellationToken).ConfigureAwait(false);
        return ToJson((await client.GetStoragePoolAsync(spec.Name!, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        try
        {
            return ToJson((await agents.For(host).GetStoragePoolAsync(id, cancellationToken).ConfigureAwait(false)).Value);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken) =>
        await ReadAsync(host, id, cancellationToken).ConfigureAwait(false)
            ?? throw new KvmApiException(HttpStatusCode.NotFound, new Problem { Type = ProblemTypes.NotFound, Title = "Not found", Detail = $"Storage pool \"{id}\" no longer exists." });

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        try
        {
            await agents.For(host).DeleteStoragePoolAsync(id, cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // Already gone.
        }
    }
}

/// <summary>Bridges: create, change MTU/address/VLAN filtering live, delete.</summary>
public sealed class NetworkOperations(IAgentClients agents) : ModelOperations<Network, NetworkSpec>("name")
{
    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        await client.CreateNetworkAsync(spec, cancellationToken).ConfigureAwait(false);
        return ToJson((await client.GetNetworkAsync(spec.Name!, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        try
        {
            return ToJson((await agents.For(host).GetNetworkAsync(id, cancellationToken).ConfigureAwait(false)).Value);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        for (var attempt = 0; ; attempt++)
        {
            var current = await client.GetNetworkAsync(id, cancellationToken).ConfigureAwait(false);
            try
            {
                await client.UpdateNetworkAsync(id, spec, current.ETag, cancellationToken).ConfigureAwait(false);
            }
            catch (KvmApiException e) when (e.Status == HttpStatusCode.PreconditionFailed && attempt < 3)
            {
                continue;
            }
            return ToJson((await client.GetNetworkAsync(id, cancellationToken).ConfigureAwait(false)).Value);
        }
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        try
        {
            await agents.For(host).DeleteNetworkAsync(id, cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // Already gone.
        }
    }
}

/// <summary>Images: every input is create-only (an import), so an update only reads back; id <c>pool/name</c>.</summary>
public sealed class ImageOperations(IAgentClients agents) : ModelOperations<Image, ImageSpec>("image_id")
{
    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        var created = await client.CreateImageAsync(spec, cancellationToken).ConfigureAwait(false);
        var (pool, name) = Split(created.Value.ImageId ?? $"{spec.Pool ?? "default"}/{spec.Name}");
        return ToJson((await client.GetImageAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        var (pool, name) = Split(id);
        try
        {
            return ToJson((await agents.For(host).GetImageAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken) =>
        await ReadAsync(host, id, cancellationToken).ConfigureAwait(false)
            ?? throw new KvmApiException(HttpStatusCode.NotFound, new Problem { Type = ProblemTypes.NotFound, Title = "Not found", Detail = $"Image \"{id}\" no longer exists." });

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        var (pool, name) = Split(id);
        try
        {
            await agents.For(host).DeleteImageAsync(pool, name, cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // Already gone.
        }
    }

    private static (string Pool, string Name) Split(string id) => PoolScopedId.Split(id, "image_id", "an image ID");
}

/// <summary>IDs of things that live in a pool: <c>pool/name</c>.</summary>
internal static class PoolScopedId
{
    public static (string Pool, string Name) Split(string id, string attribute, string what)
    {
        var slash = id.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? (id[..slash], id[(slash + 1)..])
            : throw new ModelValidationException([new ValidationError(attribute, $"\"{id}\" is not {what} (\"<pool>/<name>\").")]);
    }
}
