using System.Text.Json.Nodes;
using Kvm.Agent.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.OpenApi;

/// <summary>The committed OpenAPI document is current and covers every route the agent maps.</summary>
public sealed class OpenApiTests
{
    private static string DocumentPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Provider.sln")))
            dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"), "docs", "agent-api.openapi.json");
    }

    [Fact]
    public void TheCommittedDocumentMatchesTheModel()
    {
        var generated = AgentApiDocument.Build();
        var path = DocumentPath();
        if (Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, generated);
        }
        Assert.True(File.Exists(path), $"{path} is missing: run the tests with UPDATE_GOLDEN=1");
        Assert.Equal(generated, File.ReadAllText(path));
    }

    [Fact]
    public async Task EveryMappedRouteIsDocumentedWithItsMethod()
    {
        var document = JsonNode.Parse(await File.ReadAllTextAsync(DocumentPath()))!;
        await using var agent = await TestAgent.StartAsync();
        var endpoints = agent.Host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        Assert.NotEmpty(endpoints);
        foreach (var endpoint in endpoints)
        {
            var path = "/" + System.Text.RegularExpressions.Regex.Replace(endpoint.RoutePattern.RawText!.TrimStart('/'), "\\{([^}:]+)(:[^}]*)?\\}", "{$1}").TrimEnd('/');
            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods)
                Assert.True(document["paths"]?[path]?[method.ToLowerInvariant()] is not null, $"{method} {path} is not in docs/agent-api.openapi.json");
        }
    }
}
