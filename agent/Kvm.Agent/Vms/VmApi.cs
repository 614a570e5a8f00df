using System.Globalization;
using Kvm.Agent.Http;
using Kvm.Agent.Problems;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Kvm.Agent.Vms;

/// <summary>
/// <c>/v1/vms</c>: definitions and power actions. Handlers only translate HTTP (body, headers, query) to
/// <see cref="VmOperations"/>; failures are <see cref="AgentProblemException"/>s rendered as problem details.
/// </summary>
public static class VmApi
{
    /// <summary>Maps the VM endpoints.</summary>
    public static IEndpointRouteBuilder MapVms(this IEndpointRouteBuilder app)
    {
        var vms = app.MapGroup("/v1/vms");
        vms.MapGet("", ListVms);
        vms.MapPost("", CreateVm);
        vms.MapGet("/{vm_id:long}", GetVm);
        vms.MapPut("/{vm_id:long}", UpdateVm);
        vms.MapDelete("/{vm_id:long}", DeleteVm);
        vms.MapPost("/{vm_id:long}/start", StartVm);
        vms.MapPost("/{vm_id:long}/stop", StopVm);
        vms.MapPost("/{vm_id:long}/shutdown", ShutdownVm);
        vms.MapPost("/{vm_id:long}/reboot", RebootVm);
        vms.MapPost("/{vm_id:long}/reset", ResetVm);
        vms.MapPost("/{vm_id:long}/suspend", SuspendVm);
        vms.MapPost("/{vm_id:long}/resume", ResumeVm);
        return app;
    }

    private static Ok<List<Vm>> ListVms(VmOperations vms) => TypedResults.Ok(vms.List());

    private static Ok<Vm> GetVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, HttpResponse response)
    {
        var (vm, etag) = vms.Get(vmId);
        response.Headers.ETag = etag;
        return TypedResults.Ok(vm);
    }

    private static async Task<Results<Created<Vm>, Ok<Vm>>> CreateVm(HttpRequest request, VmOperations vms,
        [FromHeader(Name = "Idempotency-Key")] string? idempotencyKey, CancellationToken cancellationToken)
    {
        var spec = await JsonBody.ReadAsync(request, ModelJsonContext.Default.VmSpec);
        if (idempotencyKey is { Length: 0 or > 255 })
            throw AgentProblemException.Invalid("", "Idempotency-Key must have 1 to 255 characters.");
        var outcome = await vms.CreateAsync(spec, idempotencyKey, cancellationToken);
        request.HttpContext.Response.Headers.ETag = outcome.ETag;
        return outcome.Created
            ? TypedResults.Created($"/v1/vms/{outcome.Vm.VmId}", outcome.Vm)
            : TypedResults.Ok(outcome.Vm);
    }

    private static async Task<Ok<VmUpdateResult>> UpdateVm([FromRoute(Name = "vm_id")] long vmId, HttpRequest request, VmOperations vms,
        [FromQuery] double? timeout, CancellationToken cancellationToken)
    {
        var spec = await JsonBody.ReadAsync(request, ModelJsonContext.Default.VmSpec);
        var ifMatch = request.Headers.IfMatch.ToString() is { Length: > 0 } value ? value : null;
        var (result, etag) = await vms.UpdateAsync(vmId, spec, ifMatch, Seconds(timeout), cancellationToken);
        request.HttpContext.Response.Headers.ETag = etag;
        return TypedResults.Ok(result);
    }

    private static async Task<NoContent> DeleteVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms,
        [FromQuery] bool? force, [FromQuery] bool? stop, [FromQuery] double? timeout, CancellationToken cancellationToken)
    {
        await vms.DeleteAsync(vmId, force ?? false, stop ?? false, Seconds(timeout), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<Vm>> StartVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, VmRuntime runtime, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => runtime.StartAsync(stored, cancellationToken), cancellationToken));

    private static async Task<Ok<Vm>> StopVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, VmRuntime runtime, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => runtime.StopAsync(stored.VmId, cancellationToken), cancellationToken));

    private static async Task<Ok<Vm>> ShutdownVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, VmRuntime runtime,
        [FromQuery] double? timeout, [FromQuery] bool? force, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => runtime.ShutdownAsync(stored.VmId, Seconds(timeout), force ?? true, cancellationToken), cancellationToken));

    private static async Task<Ok<Vm>> RebootVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms,
        [FromQuery] double? timeout, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => vms.RebootAsync(stored, Seconds(timeout), cancellationToken), cancellationToken));

    private static async Task<Ok<Vm>> ResetVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, VmRuntime runtime, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => runtime.ResetAsync(stored.VmId, cancellationToken), cancellationToken));

    private static async Task<Ok<Vm>> SuspendVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, VmRuntime runtime, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => runtime.SuspendAsync(stored.VmId, cancellationToken), cancellationToken));

    private static async Task<Ok<Vm>> ResumeVm([FromRoute(Name = "vm_id")] long vmId, VmOperations vms, VmRuntime runtime, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.ActAsync(vmId, stored => runtime.ResumeAsync(stored.VmId, cancellationToken), cancellationToken));

    private static TimeSpan Seconds(double? timeout) => timeout switch
    {
        null => VmOperations.DefaultShutdownTimeout,
        < 0 or > 3600 or double.NaN => throw AgentProblemException.Invalid("timeout", $"{timeout.Value.ToString(CultureInfo.InvariantCulture)} is out of range: must be between 0 and 3600 seconds."),
        var s => TimeSpan.FromSeconds(s.Value),
    };
}
