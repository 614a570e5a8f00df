using System.Net;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>Standalone volumes: create (idempotent), grow in place, delete; id <c>pool/name</c>.</summary>
public sealed class VolumeOperations(IAgentClients agents) : PoolScopedOperations<Volume, VolumeSpec>(agents, "volume_id", "a volume ID")
{
    /// <inheritdoc />
    protected override async Task<Volume> GetAsync(KvmClient client, string pool, string name, CancellationToken cancellationToken) =>
        (await client.GetVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value;

    /// <inheritdoc />
    protected override Task RemoveAsync(KvmClient client, string pool, string name, CancellationToken cancellationToken) =>
        client.DeleteVolumeAsync(pool, name, cancellationToken);

    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = Agents.For(host);
        var key = Guid.NewGuid().ToString("N");
        var created = await Retry.TransientAsync(() => client.CreateVolumeAsync(spec, key, cancellationToken), cancellationToken).ConfigureAwait(false);
        var (pool, name) = Split(created.Value.VolumeId ?? $"{spec.Pool ?? "default"}/{spec.Name}");
        return ToJson((await client.GetVolumeAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = Agents.For(host);
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
public sealed class ImageOperations(IAgentClients agents) : PoolScopedOperations<Image, ImageSpec>(agents, "image_id", "an image ID")
{
    /// <inheritdoc />
    protected override async Task<Image> GetAsync(KvmClient client, string pool, string name, CancellationToken cancellationToken) =>
        (await client.GetImageAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value;

    /// <inheritdoc />
    protected override Task RemoveAsync(KvmClient client, string pool, string name, CancellationToken cancellationToken) =>
        client.DeleteImageAsync(pool, name, cancellationToken);

    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = Agents.For(host);
        var created = await client.CreateImageAsync(spec, cancellationToken).ConfigureAwait(false);
        var (pool, name) = Split(created.Value.ImageId ?? $"{spec.Pool ?? "default"}/{spec.Name}");
        return ToJson((await client.GetImageAsync(pool, name, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken) =>
        await ReadAsync(host, id, cancellationToken).ConfigureAwait(false)
            ?? throw new KvmApiException(HttpStatusCode.NotFound, new Problem { Type = ProblemTypes.NotFound, Title = "Not found", Detail = $"Image \"{id}\" no longer exists." });

}

/// <summary>Resources that live in a pool with id <c>pool/name</c>: one read (gone = null) and one idempotent delete.</summary>
public abstract class PoolScopedOperations<TModel, TSpec>(IAgentClients agents, string idAttribute, string what) : ModelOperations<TModel, TSpec>(idAttribute)
    where TSpec : class
    where TModel : class, TSpec
{
    private readonly IAgentClients _agents = agents;
    private readonly string _idAttribute = idAttribute;

    /// <summary>The agents, by host.</summary>
    protected IAgentClients Agents => _agents;

    /// <summary>GET of one resource.</summary>
    protected abstract Task<TModel> GetAsync(KvmClient client, string pool, string name, CancellationToken cancellationToken);

    /// <summary>DELETE of one resource.</summary>
    protected abstract Task RemoveAsync(KvmClient client, string pool, string name, CancellationToken cancellationToken);

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        var (pool, name) = Split(id);
        try
        {
            return ToJson(await GetAsync(_agents.For(host), pool, name, cancellationToken).ConfigureAwait(false));
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        var (pool, name) = Split(id);
        try
        {
            await RemoveAsync(_agents.For(host), pool, name, cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // Already gone.
        }
    }

    /// <summary>Splits <c>pool/name</c>; anything else is a validation error at the id attribute.</summary>
    protected (string Pool, string Name) Split(string id)
    {
        var slash = id.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? (id[..slash], id[(slash + 1)..])
            : throw new ModelValidationException([new ValidationError(_idAttribute, $"\"{id}\" is not {what} (\"<pool>/<name>\").")]);
    }
}
