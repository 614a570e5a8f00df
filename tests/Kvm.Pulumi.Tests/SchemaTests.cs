using System.Text.Json.Nodes;
using Kvm.Pulumi.Schema;

namespace Kvm.Pulumi.Tests;

public class SchemaTests
{
    private static readonly JsonObject Schema = PulumiSchema.Build();

    [Fact]
    public void CommittedSchemaIsCurrent()
    {
        var path = Repo.PathOf("sdk", "Kvm.Pulumi", "schema.json");
        var text = PulumiSchema.BuildText();
        if (Repo.Regenerate)
            File.WriteAllText(path, text);
        Assert.True(text == File.ReadAllText(path),
            "sdk/Kvm.Pulumi/schema.json is out of date: run the tests with KVM_REGENERATE=1 and review the diff.");
    }

    [Fact]
    public void PackageIdentityFollowsTheDesign()
    {
        Assert.Equal("kvm", (string?)Schema["name"]);
        Assert.Matches(@"^\d+\.\d+\.\d+$", (string?)Schema["version"]);
        Assert.Equal("(.*)(?:/[^/]*)", (string?)Schema["meta"]!["moduleFormat"]);
        var csharp = Schema["language"]!["csharp"]!;
        Assert.Equal("Pulumi", (string?)csharp["rootNamespace"]);
        Assert.Equal("Kvm", (string?)csharp["namespaces"]!["kvm"]);
        var resources = Schema["resources"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Equal(["kvm:index/vm:Vm", "kvm:index/volume:Volume", "kvm:index/image:Image", "kvm:index/storagePool:StoragePool", "kvm:index/network:Network", "kvm:index/snapshot:Snapshot"], resources);
        var functions = Schema["functions"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Equal(["kvm:index/getHost:getHost", "kvm:index/getVm:getVm", "kvm:index/getVmAddresses:getVmAddresses"], functions);
    }

    [Fact]
    public void EveryModelResourceAndDataSourceHasAPulumiKind()
    {
        Assert.Equal(Kvm.Model.Catalog.Resources.ToHashSet(), ResourceKind.All.Select(k => k.ModelType).ToHashSet());
        Assert.Equal(Kvm.Model.Catalog.DataSources.ToHashSet(), FunctionKind.All.Select(f => f.ModelType).ToHashSet());
    }

    [Fact]
    public void ConfigHasEndpointSecretTokenAndHosts()
    {
        var variables = Schema["config"]!["variables"]!;
        Assert.Equal("string", (string?)variables["endpoint"]!["type"]);
        Assert.Equal("KVM_ENDPOINT", (string?)variables["endpoint"]!["defaultInfo"]!["environment"]![0]);
        Assert.True((bool?)variables["token"]!["secret"]);
        Assert.Equal("KVM_TOKEN", (string?)variables["token"]!["defaultInfo"]!["environment"]![0]);
        Assert.Equal("string", (string?)variables["hosts"]!["additionalProperties"]!["type"]);
        var provider = Schema["provider"]!["inputProperties"]!;
        Assert.True((bool?)provider["token"]!["secret"]);
        Assert.NotNull(provider["hosts"]);
    }

    [Fact]
    public void VmInputsAreCamelCaseWithNestedTypesAndDeviceMaps()
    {
        var vm = Schema["resources"]!["kvm:index/vm:Vm"]!;
        var inputs = vm["inputProperties"]!;
        Assert.Equal("#/types/kvm:index/VmCpu:VmCpu", (string?)inputs["cpu"]!["$ref"]);
        Assert.Equal("#/types/kvm:index/VmDisk:VmDisk", (string?)inputs["disks"]!["additionalProperties"]!["$ref"]);
        Assert.Equal("#/types/kvm:index/VmNetworkInterface:VmNetworkInterface", (string?)inputs["networkInterfaces"]!["additionalProperties"]!["$ref"]);
        Assert.Equal("integer", (string?)inputs["vmId"]!["type"]);
        Assert.True((bool?)inputs["vmId"]!["replaceOnChanges"]);
        Assert.Null(inputs["name"]!["replaceOnChanges"]);
        Assert.True((bool?)inputs["host"]!["replaceOnChanges"]);
        Assert.Null(inputs["status"]);
        Assert.Null(inputs["id"]);
        Assert.Equal("string", (string?)vm["properties"]!["status"]!["type"]);
        Assert.Contains("name", vm["requiredInputs"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("vmId", vm["required"]!.AsArray().Select(n => (string?)n));

        var types = Schema["types"]!;
        var disk = types["kvm:index/VmDisk:VmDisk"]!["properties"]!;
        Assert.Equal("integer", (string?)disk["sizeGib"]!["type"]);
        Assert.True((bool?)disk["format"]!["replaceOnChanges"]);
        Assert.Contains("Default: `qcow2`.", (string?)disk["format"]!["description"]);
        Assert.NotNull(types["kvm:index/VmFirmwareEfiVars:VmFirmwareEfiVars"]);
        Assert.NotNull(types["kvm:index/VmMemoryBalloon:VmMemoryBalloon"]);
    }

    [Fact]
    public void NoPropertyAnywhereIsNamedIdOrUrnAndEveryOneIsDescribed()
    {
        foreach (var (owner, properties) in PropertyMaps(Schema))
        {
            foreach (var (name, spec) in properties)
            {
                Assert.NotEqual("id", name);
                Assert.NotEqual("urn", name);
                Assert.False(string.IsNullOrWhiteSpace((string?)spec!["description"]), $"{owner}.{name} has no description");
                var reference = (string?)spec["$ref"] ?? (string?)spec["items"]?["$ref"] ?? (string?)spec["additionalProperties"]?["$ref"];
                if (reference is not null)
                    Assert.NotNull(Schema["types"]![reference["#/types/".Length..]]);
            }
        }
    }

    [Fact]
    public void WholeNumbersBeyond32BitsAreNumbersSoGeneratedSdksDoNotOverflow()
    {
        var volume = Schema["resources"]!["kvm:index/volume:Volume"]!["properties"]!;
        Assert.Equal("number", (string?)volume["capacityBytes"]!["type"]);
        Assert.Equal("integer", (string?)volume["sizeGib"]!["type"]);
        Assert.Equal("integer", (string?)Schema["resources"]!["kvm:index/vm:Vm"]!["inputProperties"]!["vmId"]!["type"]);
        Assert.Equal("number", (string?)Schema["functions"]!["kvm:index/getHost:getHost"]!["outputs"]!["properties"]!["memoryMib"]!["type"]);
    }

    [Fact]
    public void FunctionsTakeTheirLookupArguments()
    {
        var getVm = Schema["functions"]!["kvm:index/getVm:getVm"]!;
        Assert.Equal("integer", (string?)getVm["inputs"]!["properties"]!["vmId"]!["type"]);
        Assert.Equal(["vmId"], getVm["inputs"]!["required"]!.AsArray().Select(n => (string?)n));
        Assert.NotNull(getVm["outputs"]!["properties"]!["status"]);
        var getHost = Schema["functions"]!["kvm:index/getHost:getHost"]!;
        Assert.NotNull(getHost["inputs"]!["properties"]!["host"]);
        Assert.Equal("array", (string?)getHost["outputs"]!["properties"]!["cpuModels"]!["type"]);
    }

    [Theory]
    [InlineData("VmDisks", "VmDisk")]
    [InlineData("VmNetworkInterfaces", "VmNetworkInterface")]
    [InlineData("VmCdroms", "VmCdrom")]
    [InlineData("Policies", "Policy")]
    [InlineData("Address", "Address")]
    public void ElementTypesAreSingular(string plural, string singular) =>
        Assert.Equal(singular, PulumiSchema.Singular(plural));

    internal static IEnumerable<(string Owner, JsonObject Properties)> PropertyMaps(JsonObject schema)
    {
        yield return ("config", schema["config"]!["variables"]!.AsObject());
        yield return ("provider", schema["provider"]!["inputProperties"]!.AsObject());
        foreach (var (token, resource) in schema["resources"]!.AsObject())
        {
            yield return (token, resource!["inputProperties"]!.AsObject());
            yield return (token, resource["properties"]!.AsObject());
        }
        foreach (var (token, function) in schema["functions"]!.AsObject())
        {
            yield return (token, function!["inputs"]!["properties"]!.AsObject());
            yield return (token, function["outputs"]!["properties"]!.AsObject());
        }
        foreach (var (token, type) in schema["types"]!.AsObject())
            yield return (token, type!["properties"]!.AsObject());
    }
}
