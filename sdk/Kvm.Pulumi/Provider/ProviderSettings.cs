using System.Text.Json.Nodes;
using Kvm.Model.Schema;
using Kvm.Pulumi.Schema;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Provider;

/// <summary>
/// The provider's configuration after Configure: the default agent, further named agents, and
/// the token they share. A resource's <c>host</c> is a key of <see cref="Hosts"/>; an unset host
/// (the empty string towards <see cref="Kvm.Client.IResourceOperations"/>) means <see cref="Endpoint"/>.
/// </summary>
public sealed record ProviderSettings(string? Endpoint, string? Token, IReadOnlyDictionary<string, string> Hosts)
{
    /// <summary>True when <paramref name="host"/> names a configured agent.</summary>
    public bool Knows(string host) => Hosts.ContainsKey(host);

    internal string UnknownHostMessage(string host) => Hosts.Count == 0
        ? $"\"{host}\" is not a configured host: the provider has no `hosts` map."
        : $"\"{host}\" is not a configured host; the provider's `hosts` are: {string.Join(", ", Hosts.Keys.Order(StringComparer.Ordinal))}.";

    /// <summary>Settings from decoded config, falling back to <c>KVM_ENDPOINT</c>/<c>KVM_TOKEN</c>.</summary>
    internal static ProviderSettings From(JsonObject config, Func<string, string?> environment)
    {
        var hosts = new Dictionary<string, string>(StringComparer.Ordinal);
        if (config[ProviderFields.Hosts.Name] is JsonObject map)
        {
            foreach (var (name, url) in map)
            {
                if (url is JsonValue value && value.TryGetValue<string>(out var text))
                    hosts[name] = text;
            }
        }
        return new ProviderSettings(
            Text(config, ProviderFields.Endpoint.Name) ?? NonEmpty(environment(ProviderFields.EndpointEnvironment)),
            Text(config, ProviderFields.Token.Name) ?? NonEmpty(environment(ProviderFields.TokenEnvironment)),
            hosts);
    }

    /// <summary>Problems with configuration values: agent addresses must be http(s) URLs.</summary>
    internal static IReadOnlyList<PropertyProblem> Check(DecodedProperties config)
    {
        var problems = new List<PropertyProblem>(config.Problems);
        var endpoint = AttrPath.Root.Attr(ProviderFields.Endpoint.Name);
        if (!config.IsUnknownAt(endpoint) && Text(config.Value, ProviderFields.Endpoint.Name) is { } url && !IsAgentUrl(url))
            problems.Add(new PropertyProblem(endpoint, $"\"{url}\" is not {Kvm.Client.AgentEndpoint.Forms}."));
        if (config.Value[ProviderFields.Hosts.Name] is JsonObject hosts)
        {
            foreach (var (name, value) in hosts)
            {
                var path = AttrPath.Root.Attr(ProviderFields.Hosts.Name).Key(name);
                if (!config.IsUnknownAt(path) && value is JsonValue v && v.TryGetValue<string>(out var hostUrl) && !IsAgentUrl(hostUrl))
                    problems.Add(new PropertyProblem(path, $"\"{hostUrl}\" is not {Kvm.Client.AgentEndpoint.Forms}."));
            }
        }
        return problems;
    }

    private static bool IsAgentUrl(string text) => Kvm.Client.AgentEndpoint.TryParse(text, out _);

    private static string? Text(JsonObject config, string name) =>
        config[name] is JsonValue value && value.TryGetValue<string>(out var text) ? NonEmpty(text) : null;

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;
}
