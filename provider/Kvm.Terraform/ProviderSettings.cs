using Kvm.Model.Schema;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform;

/// <summary>The provider block, resolved against the environment (<c>KVM_ENDPOINT</c>, <c>KVM_TOKEN</c>).</summary>
public sealed class ProviderSettings
{
    public const string EndpointVariable = "KVM_ENDPOINT";
    public const string TokenVariable = "KVM_TOKEN";

    public string? Endpoint { get; init; }
    public string? Token { get; init; }
    public string? CaCertPem { get; init; }
    public bool Insecure { get; init; }
    public IReadOnlyDictionary<string, string> Hosts { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Names of settings whose values were not known when the provider was configured.</summary>
    public IReadOnlyList<string> Unknown { get; init; } = [];

    /// <summary>Reads the provider block; unknown values are recorded, never fatal here.</summary>
    public static ProviderSettings From(CtyValue config, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var unknown = new List<string>();
        string? Str(string name)
        {
            if (config.IsNull || !config.IsKnown)
                return null;
            var v = config.GetAttr(name);
            if (!v.IsKnown)
            {
                unknown.Add(name);
                return null;
            }
            return v.IsNull ? null : v.AsString();
        }
        var hosts = new Dictionary<string, string>(StringComparer.Ordinal);
        var insecure = false;
        if (!config.IsNull && config.IsKnown)
        {
            var h = config.GetAttr("hosts");
            if (!h.IsWhollyKnown)
                unknown.Add("hosts");
            else if (!h.IsNull)
                foreach (var (key, value) in h.Entries)
                    if (!value.IsNull)
                        hosts[key] = value.AsString();
            var i = config.GetAttr("insecure");
            if (!i.IsKnown)
                unknown.Add("insecure");
            else if (!i.IsNull)
                insecure = i.AsBool();
        }
        return new ProviderSettings
        {
            Endpoint = Str("endpoint") ?? NonEmpty(environment(EndpointVariable)),
            Token = Str("token") ?? NonEmpty(environment(TokenVariable)),
            CaCertPem = Str("ca_cert_pem"),
            Insecure = insecure,
            Hosts = hosts,
            Unknown = unknown,
        };
    }

    /// <summary>Problems with a provider block, each at its attribute; unknown values pass.</summary>
    public static IEnumerable<Diagnostic> Validate(CtyValue config)
    {
        if (config.IsNull || !config.IsKnown)
            yield break;
        var endpoint = config.GetAttr("endpoint");
        if (endpoint.IsKnown && !endpoint.IsNull && !IsAgentUrl(endpoint.AsString()))
            yield return Diagnostics.Error("Invalid endpoint", $"\"{endpoint.AsString()}\" is not {Kvm.Client.AgentEndpoint.Forms} of a kvm-agent.", AttrPath.Root.Attr("endpoint"));
        var hosts = config.GetAttr("hosts");
        if (hosts.IsKnown && !hosts.IsNull)
        {
            foreach (var (key, value) in hosts.Entries)
            {
                if (value.IsKnown && !value.IsNull && !IsAgentUrl(value.AsString()))
                    yield return Diagnostics.Error("Invalid host endpoint", $"hosts[\"{key}\"]: \"{value.AsString()}\" is not {Kvm.Client.AgentEndpoint.Forms} of a kvm-agent.",
                        AttrPath.Root.Attr("hosts").Key(key));
            }
        }
    }

    /// <summary>The agent URL for a resource's <c>host</c> ("" or null: the provider's endpoint).</summary>
    public Uri EndpointFor(string? host)
    {
        if (string.IsNullOrEmpty(host))
        {
            if (Unknown.Contains("endpoint"))
                throw new ProviderConfigurationException("The provider's endpoint depends on a value that is not known yet; it must be known before resources can be read or changed.");
            return Endpoint is { } e ? new Uri(e)
                : throw new ProviderConfigurationException($"No agent endpoint: set the provider's `endpoint` or the {EndpointVariable} environment variable.");
        }
        if (Hosts.TryGetValue(host, out var url))
            return new Uri(url);
        if (Unknown.Contains("hosts"))
            throw new ProviderConfigurationException("The provider's hosts map depends on values that are not known yet.");
        var known = Hosts.Count == 0 ? "the provider has no `hosts`" : "known hosts: " + string.Join(", ", Hosts.Keys.Order(StringComparer.Ordinal));
        throw new ProviderConfigurationException($"Host \"{host}\" is not in the provider's `hosts` map ({known}).");
    }

    private static bool IsAgentUrl(string text) => Kvm.Client.AgentEndpoint.TryParse(text, out _);

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>The provider configuration cannot serve a request (no endpoint, unknown host…).</summary>
public sealed class ProviderConfigurationException(string message) : Exception(message);
