using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Model.Tests;

/// <summary>How TPM and autostart changes are classified and guarded.</summary>
public class TpmAndAutostartTests
{
    private static VmSpec Parse(string json) => JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;

    [Theory]
    [InlineData("""{"name":"a"}""", """{"name":"a","tpm":{}}""", "tpm")]
    [InlineData("""{"name":"a","tpm":{"version":"v1.2"}}""", """{"name":"a"}""", "tpm")]
    [InlineData("""{"name":"a","tpm":{}}""", """{"name":"a","tpm":{"state_generation":1}}""", "tpm.state_generation")]
    public void AddingRemovingAndResettingATpmNeedARestartNotAReplacement(string before, string after, string attribute) =>
        Assert.Equal(new SettingChange(attribute, UpdateKind.Restart), Assert.Single(Changes.Classify(Parse(before), Parse(after))));

    [Fact]
    public void AVersionChangeNeedsANewStateGeneration()
    {
        var before = Parse("""{"name":"a","tpm":{}}""");
        var error = Assert.Single(Parse("""{"name":"a","tpm":{"version":"v1.2"}}""").ValidateUpdate(before));
        Assert.Equal("tpm.version", error.Attribute);
        Assert.Contains("state_generation", error.Detail, StringComparison.Ordinal);
        Assert.Empty(Parse("""{"name":"a","tpm":{"version":"v1.2","state_generation":1}}""").ValidateUpdate(before));
        Assert.Empty(Parse("""{"name":"a","tpm":{"version":"v2.0"}}""").ValidateUpdate(before)); // the default, spelled out
        Assert.Empty(Parse("""{"name":"a","tpm":{"version":"v1.2"}}""").ValidateUpdate(Parse("""{"name":"a"}"""))); // a new TPM anyway
    }

    [Fact]
    public void AutostartChangesApplyLive()
    {
        var changes = Changes.Classify(Parse("""{"name":"a"}"""), Parse("""{"name":"a","autostart":{"enabled":true,"order":1,"up_delay_seconds":5}}"""));
        Assert.Equal([new SettingChange("autostart", UpdateKind.Live)], changes);
        changes = Changes.Classify(Parse("""{"name":"a","autostart":{"enabled":true}}"""), Parse("""{"name":"a","autostart":{"enabled":true,"down_delay_seconds":5}}"""));
        Assert.Equal([new SettingChange("autostart.down_delay_seconds", UpdateKind.Live)], changes);
    }
}
