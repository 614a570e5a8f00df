using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Http;

/// <summary>
/// Reads a request body as model JSON. Anything that is not the model (bad syntax, wrong types, unknown
/// properties) is a 400 <c>malformed-body</c> naming the JSON path, before any handler logic runs.
/// </summary>
internal static class JsonBody
{
    public static async Task<T> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> type) where T : class
    {
        if (request.ContentType is { } contentType && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
            && !contentType.Contains("+json", StringComparison.OrdinalIgnoreCase))
            throw new AgentProblemException(415, ProblemTypes.MalformedBody, "Unsupported media type", $"The body must be application/json, not {contentType}.");
        try
        {
            return await JsonSerializer.DeserializeAsync(request.Body, type, request.HttpContext.RequestAborted)
                ?? throw Malformed("The body must be a JSON object, not null.", "");
        }
        catch (JsonException e)
        {
            var path = e.Path ?? "$";
            throw Malformed($"The body is not a valid {typeof(T).Name} at {path}: {Reason(e)}", path);
        }
    }

    private static AgentProblemException Malformed(string detail, string path) =>
        new(400, ProblemTypes.MalformedBody, "Malformed request body", detail,
            [new ProblemError(path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$'), detail)]);

    // System.Text.Json appends "Path: … | LineNumber: …" to its messages; the path is reported separately.
    private static string Reason(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
