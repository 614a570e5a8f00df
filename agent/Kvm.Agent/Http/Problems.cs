using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Http;

/// <summary>
/// Turns every failure into RFC 9457 problem JSON in one place: expected ones (<see cref="AgentProblemException"/>),
/// bad requests Kestrel detects, unmatched routes, and unexpected exceptions (500 without internals).
/// </summary>
internal static class Problems
{
    public const string ContentType = "application/problem+json";

    public static IApplicationBuilder UseAgentProblems(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        try
        {
            await next(context);
        }
        catch (AgentProblemException problem)
        {
            await WriteAsync(context, problem);
            return;
        }
        catch (Kvm.Agent.Qemu.QemuBuildException build)
        {
            // The spec cannot run on this host (a CPU it lacks, no nested virtualization, no hugetlbfs): 422 keyed by attribute.
            await WriteAsync(context, AgentProblemException.Validation(build.Errors.Select(e => new ProblemError(e.Attribute, e.Detail))));
            return;
        }
        catch (BadHttpRequestException bad) when (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await WriteAsync(context, TooLarge(context));
            return;
        }
        catch (BadHttpRequestException bad)
        {
            await WriteAsync(context, new AgentProblemException(bad.StatusCode, ProblemTypes.MalformedBody, "Malformed request", bad.Message));
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            Log.Unhandled(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Kvm.Agent"), e, context.Request.Method, context.Request.Path);
            await WriteAsync(context, new AgentProblemException(500, ProblemTypes.Internal, "Internal error", "The agent failed unexpectedly; its log has the details."));
            return;
        }
        // Routing answers unmatched paths and methods with an empty 404/405: give those a problem body too.
        var response = context.Response;
        if (!response.HasStarted && response.StatusCode >= 400 && response.ContentType is null && response.ContentLength is null)
        {
            await WriteAsync(context, response.StatusCode switch
            {
                404 => AgentProblemException.NotFound($"No resource at {context.Request.Path}."),
                405 => new AgentProblemException(405, ProblemTypes.NotFound, "Method not allowed", $"{context.Request.Method} is not allowed on {context.Request.Path}."),
                var s => new AgentProblemException(s, ProblemTypes.Internal, ReasonPhrase(s), ReasonPhrase(s)),
            });
        }
    });

    public static AgentProblemException TooLarge(HttpContext context) =>
        new(413, ProblemTypes.TooLarge, "Request body too large",
            $"The request body exceeds {context.RequestServices.GetRequiredService<AgentOptions>().MaxRequestBodyBytes} bytes.");

    public static async Task WriteAsync(HttpContext context, AgentProblemException e)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            context.Abort();
            return;
        }
        response.Clear();
        response.StatusCode = e.Status;
        response.ContentType = ContentType;
        if (e.Type == ProblemTypes.Busy)
            response.Headers.RetryAfter = "1";
        if (e.Type == ProblemTypes.Unauthorized)
            response.Headers.WWWAuthenticate = "Bearer";
        var problem = new Problem
        {
            Type = e.Type,
            Title = e.Title,
            Status = e.Status,
            Detail = e.Message,
            Instance = context.Request.Path,
            Errors = e.Errors is { Count: > 0 } ? e.Errors : null,
        };
        await System.Text.Json.JsonSerializer.SerializeAsync(response.Body, problem, ModelJsonContext.Default.Problem, context.RequestAborted);
    }

    private static string ReasonPhrase(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } p ? p : "Error";
}
