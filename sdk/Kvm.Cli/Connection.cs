using System.CommandLine;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Kvm.Client;

namespace Kvm.Cli;

/// <summary>Where the agent is and how to authenticate: options first, then the environment, then the local defaults.</summary>
public sealed class Connection
{
    /// <summary>The agent's default listen address.</summary>
    public const string DefaultEndpoint = "http://127.0.0.1:8680";

    /// <summary>Where a local kvm-agent writes the token it generates.</summary>
    public const string DefaultTokenFile = "/var/lib/kvm-agent/token";

    /// <summary>--endpoint.</summary>
    public Option<string?> Endpoint { get; } = new("--endpoint")
    {
        Description = $"Agent URL (env KVM_ENDPOINT; default {DefaultEndpoint}).",
        HelpName = "URL",
        Recursive = true,
    };

    /// <summary>--token.</summary>
    public Option<string?> Token { get; } = new("--token")
    {
        Description = "Bearer token (env KVM_TOKEN). Prefer --token-file or the environment: arguments show in ps.",
        HelpName = "TOKEN",
        Recursive = true,
    };

    /// <summary>--token-file.</summary>
    public Option<string?> TokenFile { get; } = new("--token-file")
    {
        Description = $"File holding the bearer token (default for a local agent: {DefaultTokenFile}).",
        HelpName = "FILE",
        Recursive = true,
    };

    /// <summary>The options, for the root command.</summary>
    public IEnumerable<Option> Options => [Endpoint, Token, TokenFile];

    /// <summary>The endpoint this invocation talks to.</summary>
    public Uri ResolveEndpoint(ParseResult parsed)
    {
        var text = parsed.GetValue(Endpoint) ?? NonEmpty(Environment.GetEnvironmentVariable("KVM_ENDPOINT")) ?? DefaultEndpoint;
        if (!text.Contains("://", StringComparison.Ordinal))
            text = "http://" + text;
        if (!AgentEndpoint.TryParse(text, out var uri))
            throw CliException.Usage($"--endpoint \"{text}\" is not {AgentEndpoint.Forms}.");
        return uri;
    }

    /// <summary>
    /// The token: --token, --token-file, KVM_TOKEN, then the local agent's token file. The default file is only
    /// read for a loopback endpoint, so a local secret is never sent to another host by accident.
    /// </summary>
    public string ResolveToken(ParseResult parsed, Uri endpoint)
    {
        if (NonEmpty(parsed.GetValue(Token)) is { } token)
            return token;
        if (parsed.GetValue(TokenFile) is { } file)
            return ReadTokenFile(file, "--token-file");
        if (NonEmpty(Environment.GetEnvironmentVariable("KVM_TOKEN")) is { } fromEnvironment)
            return fromEnvironment;
        if (IsLoopback(endpoint) && File.Exists(DefaultTokenFile))
            return ReadTokenFile(DefaultTokenFile, "the local agent's token file");
        throw CliException.Usage(
            $"no token for {endpoint.GetLeftPart(UriPartial.Authority)}: pass --token-file FILE or --token TOKEN, or set KVM_TOKEN " +
            $"(a local agent's token is read from {DefaultTokenFile} when that file is readable).");
    }

    /// <summary>A client for this invocation; <paramref name="budget"/> bounds each request (long for shutdowns and creates).</summary>
    public (KvmClient Client, Uri Endpoint) Open(ParseResult parsed, TimeSpan budget)
    {
        var endpoint = ResolveEndpoint(parsed);
        var token = ResolveToken(parsed, endpoint);
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) };
        return (KvmClient.Create(endpoint, token, handler, budget), endpoint);
    }

    private static string ReadTokenFile(string path, string what)
    {
        try
        {
            return NonEmpty(File.ReadAllText(path)) ?? throw CliException.Usage($"{what} {path} is empty.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.Usage($"cannot read {what} {path}: {e.Message}");
        }
    }

    private static bool IsLoopback(Uri endpoint) => AgentEndpoint.IsLocal(endpoint);

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    /// <summary>Turns transport failures into "unreachable" with the reason.</summary>
    public static CliException Unreachable(Uri endpoint, Exception e)
    {
        var reason = e switch
        {
            HttpRequestException { InnerException: SocketException s } => s.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (is kvm-agent running there?)",
                SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData => "host name not found",
                SocketError.TimedOut => "connection timed out",
                _ => s.Message,
            },
            HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } h => "TLS handshake failed: " + (h.InnerException?.Message ?? h.Message),
            HttpRequestException h => h.InnerException?.Message ?? h.Message,
            TaskCanceledException { InnerException: TimeoutException } => "no answer in time",
            _ => e.Message,
        };
        return new CliException(ExitCodes.Unreachable,
            $"cannot reach kvm-agent at {endpoint.GetLeftPart(UriPartial.Authority)}: {reason}. Set --endpoint or KVM_ENDPOINT to the agent's address.");
    }
}
