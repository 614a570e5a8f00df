namespace Kvm.Protocol.GoPlugin;

/// <summary>What a go-plugin host tells its plugin through the environment.</summary>
public sealed record GoPluginSettings
{
    public const string MagicCookieKey = "TF_PLUGIN_MAGIC_COOKIE";
    public const string MagicCookieValue = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

    /// <summary>TF_PLUGIN_MAGIC_COOKIE; must equal <see cref="MagicCookieValue"/>.</summary>
    public string? MagicCookie { get; init; }

    /// <summary>PLUGIN_PROTOCOL_VERSIONS, e.g. "5,6" in any order; null means "whatever you speak".</summary>
    public string? ProtocolVersions { get; init; }

    /// <summary>PLUGIN_CLIENT_CERT (PEM). Present means AutoMTLS; absent means plaintext h2c.</summary>
    public string? ClientCertificatePem { get; init; }

    /// <summary>PLUGIN_UNIX_SOCKET_DIR; null means a private directory under TMPDIR.</summary>
    public string? UnixSocketDirectory { get; init; }

    /// <summary>Listen on 127.0.0.1 instead of a unix socket (KVM_PLUGIN_NETWORK=tcp).</summary>
    public bool UseTcp { get; init; }

    /// <summary>Where AutoMTLS certificates made ahead of time are kept; null to make each on start.</summary>
    public string? SpareCertificateDirectory { get; init; }

    public static GoPluginSettings FromEnvironment() => new()
    {
        SpareCertificateDirectory = SpareCertificates.DefaultDirectory(Environment.GetEnvironmentVariable),
        MagicCookie = Environment.GetEnvironmentVariable(MagicCookieKey),
        ProtocolVersions = Environment.GetEnvironmentVariable("PLUGIN_PROTOCOL_VERSIONS"),
        ClientCertificatePem = NullIfEmpty(Environment.GetEnvironmentVariable("PLUGIN_CLIENT_CERT")),
        UnixSocketDirectory = NullIfEmpty(Environment.GetEnvironmentVariable("PLUGIN_UNIX_SOCKET_DIR")),
        UseTcp = string.Equals(Environment.GetEnvironmentVariable("KVM_PLUGIN_NETWORK"), "tcp", StringComparison.OrdinalIgnoreCase),
    };

    public bool HasValidCookie => string.Equals(MagicCookie, MagicCookieValue, StringComparison.Ordinal);

    /// <summary>True when the host offers <paramref name="version"/> (or offers nothing, i.e. any).</summary>
    public bool Offers(int version)
    {
        if (string.IsNullOrWhiteSpace(ProtocolVersions))
        {
            return true;
        }
        foreach (var part in ProtocolVersions.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v == version)
            {
                return true;
            }
        }
        return false;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
