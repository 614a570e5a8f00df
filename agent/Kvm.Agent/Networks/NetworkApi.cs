using Kvm.Agent.Storage;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kvm.Agent.Networks;

/// <summary>HTTP surface of networks: <c>/v1/networks</c>.</summary>
public static class NetworkApi
{
    /// <summary>Maps the network endpoints; returns their group for conventions (auth).</summary>
    public static RouteGroupBuilder MapNetworks(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/networks");
        group.MapGet("", ListNetworks);
        group.MapPost("", CreateNetwork);
        group.MapGet("/{name}", GetNetwork);
        group.MapPut("/{name}", UpdateNetwork);
        group.MapDelete("/{name}", DeleteNetwork);
        return group;
    }

    /// <summary>GET /v1/networks.</summary>
    public static async Task<JsonHttpResult<List<Network>>> ListNetworks(Bridges bridges, CancellationToken cancellationToken) =>
        TypedResults.Json(await bridges.ListAsync(cancellationToken), ModelJsonContext.Default.ListNetwork);

    /// <summary>GET /v1/networks/{name}.</summary>
    public static async Task<JsonHttpResult<Network>> GetNetwork(string name, HttpResponse response, Bridges bridges, CancellationToken cancellationToken)
    {
        var (network, etag) = await bridges.GetAsync(name, cancellationToken);
        response.Headers.ETag = etag;
        return TypedResults.Json(network, ModelJsonContext.Default.Network);
    }

    /// <summary>POST /v1/networks: creates a bridge or adopts an existing one.</summary>
    public static async Task<JsonHttpResult<Network>> CreateNetwork(HttpContext context, Bridges bridges)
    {
        var spec = await ModelHttp.ReadAsync(context.Request, ModelJsonContext.Default.NetworkSpec, context.RequestAborted);
        var network = await bridges.CreateAsync(spec, context.RequestAborted);
        context.Response.Headers.Location = $"/v1/networks/{network.Name}";
        return TypedResults.Json(network, ModelJsonContext.Default.Network, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>PUT /v1/networks/{name}: mtu, address and vlan_filtering apply live.</summary>
    public static async Task<JsonHttpResult<Network>> UpdateNetwork(string name, HttpContext context, Bridges bridges)
    {
        var spec = await ModelHttp.ReadAsync(context.Request, ModelJsonContext.Default.NetworkSpec, context.RequestAborted);
        var network = await bridges.UpdateAsync(name, spec, ModelHttp.IfMatch(context.Request), context.RequestAborted);
        return TypedResults.Json(network, ModelJsonContext.Default.Network);
    }

    /// <summary>DELETE /v1/networks/{name}.</summary>
    public static async Task<NoContent> DeleteNetwork(string name, HttpRequest request, Bridges bridges, CancellationToken cancellationToken)
    {
        await bridges.DeleteAsync(name, ModelHttp.IfMatch(request), cancellationToken);
        return TypedResults.NoContent();
    }
}
