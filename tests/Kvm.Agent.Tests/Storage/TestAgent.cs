using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kvm.Agent.Tests.Storage;

/// <summary>
/// The feature endpoints on a real Kestrel on 127.0.0.1:0 with a stand-in for the host's problem rendering,
/// until the agent host is merged.
/// </summary>
public sealed class TestAgent : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestAgent(WebApplication app, HttpClient client)
    {
        _app = app;
        Client = client;
    }

    public HttpClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<TestAgent> StartAsync(ICommandRunner runner, Action<IServiceCollection> register, Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(runner);
        register(builder.Services);
        var app = builder.Build();
        app.Use(RenderProblems);
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestAgent(app, new HttpClient { BaseAddress = new Uri(address) });
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static async Task RenderProblems(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (AgentProblemException e)
        {
            context.Response.StatusCode = e.Status;
            context.Response.ContentType = "application/problem+json";
            var problem = new Problem { Type = e.Type, Title = e.Title, Status = e.Status, Detail = e.Message, Instance = context.Request.Path, Errors = e.Errors };
            await JsonSerializer.SerializeAsync(context.Response.Body, problem, ModelJsonContext.Default.Problem);
        }
    }
}

/// <summary>Model JSON over HTTP for the tests.</summary>
public static class Http
{
    public static Task<HttpResponseMessage> SendJsonAsync(this HttpClient client, HttpMethod method, string url, string json, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (ifMatch is not null)
            request.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(ifMatch));
        return client.SendAsync(request);
    }

    public static async Task<T> ReadModelAsync<T>(this HttpResponseMessage response, JsonTypeInfo<T> type, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        return JsonSerializer.Deserialize(body, type)!;
    }

    public static async Task<Problem> ReadProblemAsync(this HttpResponseMessage response, HttpStatusCode expected, string type)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonSerializer.Deserialize(body, ModelJsonContext.Default.Problem)!;
        Assert.Equal(type, problem.Type);
        return problem;
    }
}
