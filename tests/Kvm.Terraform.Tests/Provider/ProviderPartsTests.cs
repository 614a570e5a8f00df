using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;

namespace Kvm.Terraform.Tests.Provider;

public class ProviderPartsTests
{
    private static CtyValue ProviderConfig(params (string, CtyValue)[] values) => CtyValue.Object(TerraformSchema.Provider.ImpliedType, values);

    [Fact]
    public void Endpoint_and_token_fall_back_to_the_environment()
    {
        var env = new Dictionary<string, string> { ["KVM_ENDPOINT"] = "http://127.0.0.1:8680", ["KVM_TOKEN"] = "t" };
        var settings = ProviderSettings.From(ProviderConfig(), env.GetValueOrDefault);
        Assert.Equal("http://127.0.0.1:8680", settings.Endpoint);
        Assert.Equal("t", settings.Token);
        var explicitly = ProviderSettings.From(ProviderConfig(("endpoint", CtyValue.String("http://h:1"))), env.GetValueOrDefault);
        Assert.Equal(new Uri("http://h:1"), explicitly.EndpointFor(""));
    }

    [Fact]
    public void Unknown_provider_values_do_not_fail_until_an_agent_is_needed()
    {
        var config = ProviderConfig(("endpoint", CtyValue.Unknown(CtyType.String)), ("hosts", CtyValue.Unknown(CtyType.Map(CtyType.String))));
        Assert.Empty(ProviderSettings.Validate(config));
        var settings = ProviderSettings.From(config, _ => null);
        Assert.Equal(["endpoint", "hosts"], settings.Unknown.Order(StringComparer.Ordinal));
        Assert.Throws<ProviderConfigurationException>(() => settings.EndpointFor(""));
        Assert.Throws<ProviderConfigurationException>(() => settings.EndpointFor("lab2"));
    }

    [Fact]
    public void Hosts_select_agents_and_bad_urls_are_reported_at_their_key()
    {
        var config = ProviderConfig(("hosts", CtyValue.Map(CtyType.String, ("a", CtyValue.String("http://10.0.0.1:8680")), ("b", CtyValue.String("ftp://x")))));
        var diagnostic = Assert.Single(ProviderSettings.Validate(config));
        Assert.Equal("b", diagnostic.Attribute.Steps[1].ElementKeyString);
        var settings = ProviderSettings.From(config, _ => null);
        Assert.Equal(new Uri("http://10.0.0.1:8680"), settings.EndpointFor("a"));
        Assert.Contains("known hosts: a, b", Assert.Throws<ProviderConfigurationException>(() => settings.EndpointFor("c")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8680", true)]
    [InlineData("https://lab2.example:8680", true)]
    [InlineData("unix:///run/kvm-agent/agent.sock", true)]
    [InlineData("unix://host/run/agent.sock", false)]
    [InlineData("unix:///", false)]
    [InlineData("ftp://x", false)]
    [InlineData("127.0.0.1:8680", false)]
    public void Endpoints_are_http_https_or_a_local_unix_socket(string endpoint, bool valid)
    {
        var diagnostics = ProviderSettings.Validate(ProviderConfig(("endpoint", CtyValue.String(endpoint)))).ToList();
        Assert.Equal(valid, diagnostics.Count == 0);
        if (!valid)
            Assert.Contains("unix:///path", Assert.Single(diagnostics).Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kvm_vm", "100", "", "100")]
    [InlineData("kvm_vm", "lab2/100", "lab2", "100")]
    [InlineData("kvm_volume", "default/d.qcow2", "", "default/d.qcow2")]
    [InlineData("kvm_volume", "lab2/default/d.qcow2", "lab2", "default/d.qcow2")]
    [InlineData("kvm_image", "default/d.qcow2", "", "default/d.qcow2")]
    [InlineData("kvm_image", "lab2/default/d.qcow2", "lab2", "default/d.qcow2")]
    [InlineData("kvm_network", "br0", "", "br0")]
    [InlineData("kvm_storage_pool", "lab2/fast", "lab2", "fast")]
    [InlineData("kvm_snapshot", "100/before", "", "100/before")]
    [InlineData("kvm_snapshot", "lab2/100/before", "lab2", "100/before")]
    public void Import_ids_name_an_optional_host_and_the_id(string type, string text, string host, string id)
    {
        Assert.True(ImportIds.TryParse(TerraformSchema.FindResource(type)!, text, out var h, out var i, out _));
        Assert.Equal(host, h);
        Assert.Equal(id, i);
    }

    [Theory]
    [InlineData("kvm_vm", "web")]
    [InlineData("kvm_vm", "a/b/100")]
    [InlineData("kvm_volume", "d.qcow2")]
    [InlineData("kvm_image", "d.qcow2")]
    [InlineData("kvm_network", "")]
    [InlineData("kvm_snapshot", "before")]
    public void Malformed_import_ids_are_refused(string type, string text) =>
        Assert.False(ImportIds.TryParse(TerraformSchema.FindResource(type)!, text, out _, out _, out _));

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("10m", 600)]
    [InlineData("1h30m", 5400)]
    [InlineData("1.5m", 90)]
    public void Durations_parse_like_terraform(string text, int seconds)
    {
        Assert.True(Durations.TryParse(text, out var t));
        Assert.Equal(TimeSpan.FromSeconds(seconds), t);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("ten minutes")]
    [InlineData("5m junk")]
    public void Bad_durations_are_refused(string text) => Assert.False(Durations.TryParse(text, out _));

    [Fact]
    public void Validation_errors_become_diagnostics_at_their_path()
    {
        var d = Diagnostics.FromValidation(new Kvm.Model.Validation.ValidationError("network_interfaces[\"net0\"].mac", "bad"));
        Assert.Equal(["network_interfaces", "net0", "mac"], d.Attribute.Steps.Select(s => s.AttributeName.Length > 0 ? s.AttributeName : s.ElementKeyString));
        Assert.Contains("network_interfaces[\"net0\"].mac", d.Detail, StringComparison.Ordinal);
        var list = Diagnostics.ToProto(Kvm.Model.Schema.AttrPath.Parse("boot_order[1]"));
        Assert.Equal(1, list.Steps[1].ElementKeyInt);
    }
}
