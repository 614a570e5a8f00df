using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Kvm.Client.Operations;

/// <summary>Resolves a resource's <c>host</c> ("" for the default agent) to a client of that agent.</summary>
public interface IAgentClients
{
    /// <summary>The client for <paramref name="host"/>.</summary>
    KvmClient For(string host);
}

/// <summary>
/// One <see cref="KvmClient"/> per agent endpoint, made on first use and shared by concurrent operations.
/// TLS: the system roots, or a private CA given as PEM, or (tests only) no verification.
/// </summary>
public sealed class AgentClients(Func<string, Uri> endpointFor, string? token, string? caCertPem = null, bool insecure = false) : IAgentClients, IDisposable
{
    private readonly ConcurrentDictionary<Uri, Lazy<KvmClient>> _clients = new();

    /// <inheritdoc />
    public KvmClient For(string host)
    {
        var endpoint = endpointFor(host);
        return _clients.GetOrAdd(endpoint, e => new Lazy<KvmClient>(() => Create(e))).Value;
    }

    private KvmClient Create(Uri endpoint)
    {
        if (string.IsNullOrEmpty(token))
            throw new InvalidOperationException($"No token for the agent at {endpoint}: set the provider's token (or KVM_TOKEN).");
        var handler = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) };
        if (endpoint.Scheme == Uri.UriSchemeHttps && (insecure || caCertPem is not null))
            handler.SslOptions.RemoteCertificateValidationCallback = Validate;
        return KvmClient.Create(endpoint, token, handler, TimeSpan.FromMinutes(30));
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (insecure || errors == SslPolicyErrors.None)
            return true;
        if (certificate is null || caCertPem is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            return false;
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(caCertPem);
        custom.ChainPolicy.CustomTrustStore.AddRange(roots);
        return custom.Build(new X509Certificate2(certificate));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var client in _clients.Values.Where(l => l.IsValueCreated))
            client.Value.Dispose();
    }
}
