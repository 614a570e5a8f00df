using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Storage;

/// <summary>
/// Request bodies and ETags in the model's JSON contract. Bodies are read with <see cref="ModelJson"/>
/// rather than the host's JSON options, so snake_case and the unknown-property rule hold whatever the host configures.
/// </summary>
internal static class ModelHttp
{
    public static async Task<T> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> type, CancellationToken cancellationToken) where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(request.Body, type, cancellationToken)
                ?? throw Malformed("The request body is empty or null.");
        }
        catch (JsonException e)
        {
            throw Malformed(e.Message);
        }
    }

    public static string ETagOf(ReadOnlySpan<byte> bytes) => "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes))[..20] + "\"";

    /// <summary>Refuses a write whose If-Match names another version; no If-Match means unconditional.</summary>
    public static void CheckIfMatch(string? ifMatch, string etag)
    {
        if (string.IsNullOrEmpty(ifMatch) || ifMatch == "*")
            return;
        var tags = ifMatch.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (!tags.Contains(etag, StringComparer.Ordinal))
            throw new AgentProblemException(412, ProblemTypes.StaleEtag, "Stale ETag",
                $"The resource changed since it was read (current ETag {etag}); read it again and retry.");
    }

    public static string? IfMatch(HttpRequest request) => request.Headers.IfMatch.Count == 0 ? null : request.Headers.IfMatch.ToString();

    private static AgentProblemException Malformed(string detail) =>
        new(400, ProblemTypes.MalformedBody, "Malformed request body", detail);
}
