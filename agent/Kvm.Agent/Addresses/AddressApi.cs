using System.Text.Json.Serialization;
using Kvm.Agent.GuestAgent;
using Kvm.Agent.Problems;
using Kvm.Agent.Vms;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Kvm.Agent.Addresses;

/// <summary>What <c>GET /v1/vms/{vm_id}/agent</c> returns: the guest as its guest agent describes it.</summary>
public sealed record GuestAgentInfo(
    [property: JsonPropertyName("vm_id")] long VmId,
    [property: JsonPropertyName("agent_version")] string? AgentVersion,
    [property: JsonPropertyName("hostname")] string? Hostname,
    [property: JsonPropertyName("os_name")] string? OsName,
    [property: JsonPropertyName("os_version")] string? OsVersion,
    [property: JsonPropertyName("kernel_release")] string? KernelRelease,
    [property: JsonPropertyName("supported_commands")] IReadOnlyList<string> SupportedCommands);

[JsonSerializable(typeof(GuestAgentInfo))]
internal sealed partial class GuestAgentJsonContext : JsonSerializerContext;

/// <summary><c>/v1/vms/{vm_id}/addresses</c> and <c>/v1/vms/{vm_id}/agent</c>: what the agent knows of a guest, never waiting long.</summary>
public static class AddressApi
{
    /// <summary>Registers the guest agents, the lease source, the neighbour table and the address lookup.</summary>
    public static IServiceCollection AddGuestAddresses(this IServiceCollection services)
    {
        services.AddSingleton<GuestAgents>();
        services.AddSingleton<ILeaseSource, DnsmasqLeaseFiles>();
        services.AddSingleton<NeighborTable>();
        services.AddSingleton<VmAddressService>();
        return services;
    }

    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapGuestAddresses(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/vms/{vm_id:long}/addresses", GetAddresses);
        app.MapGet("/v1/vms/{vm_id:long}/agent", GetGuestAgentInfo);
        return app;
    }

    private static async Task<Ok<VmAddresses>> GetAddresses([FromRoute(Name = "vm_id")] long vmId, VmAddressService addresses, CancellationToken cancellationToken) =>
        TypedResults.Ok(await addresses.LookupAsync(vmId, cancellationToken));

    private static async Task<IResult> GetGuestAgentInfo([FromRoute(Name = "vm_id")] long vmId, VmStore store, VmRuntime runtime, GuestAgents agents,
        CancellationToken cancellationToken)
    {
        store.Get(vmId);
        if (runtime.MonitorOf(vmId) is not { } monitor)
            throw AgentProblemException.InvalidState($"VM {vmId} is not running.");
        if (monitor.StartedSpec.Agent?.Enabled != true)
            throw AgentProblemException.InvalidState($"VM {vmId} has no guest agent channel: agent.enabled was off when it started.");
        try
        {
            var info = await agents.GetInfoAsync(vmId, cancellationToken);
            return TypedResults.Json(new GuestAgentInfo(vmId, info.AgentVersion, info.Hostname, info.OsName, info.OsVersion, info.KernelRelease, info.Commands),
                GuestAgentJsonContext.Default.GuestAgentInfo);
        }
        catch (Exception e) when (e is TimeoutException or IOException or QgaException)
        {
            throw AgentProblemException.InvalidState($"VM {vmId}: {e.Message}");
        }
    }
}
