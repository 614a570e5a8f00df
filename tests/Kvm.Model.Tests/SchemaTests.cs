using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Model.Tests;

public class SchemaTests
{
    [Fact]
    public void NamesAreSnakeCaseInJsonAndCamelCaseForPulumi()
    {
        var schema = Schemas.Resource<Vm>();
        Assert.Equal("kvm_vm", schema.TerraformName);
        Assert.Equal("kvm:index/vm:Vm", schema.PulumiToken);
        var nics = schema.Object.Find("network_interfaces")!;
        Assert.Equal("networkInterfaces", nics.PulumiName);
        Assert.Equal(ValueKind.Map, nics.Type.Kind);
        Assert.Equal("size_gib", nics is null ? null : schema.Object.Find("disks")!.Type.Element!.Object!.Find("size_gib")!.Name);
        Assert.Equal("kvm:index/storagePool:StoragePool", Schemas.Resource<StoragePool>().PulumiToken);
    }

    [Fact]
    public void JsonUsesTheSchemaNamesAndOmitsNulls()
    {
        var json = JsonSerializer.Serialize(new VmSpec { VmId = 100, Name = "a", Memory = new MemorySpec { SizeMib = 1024 } }, ModelJson.Options);
        Assert.Equal("""{"vm_id":100,"name":"a","memory":{"size_mib":1024}}""", json);
    }

    [Fact]
    public void EveryAttributeHasADescriptionAndNoInputIsNamedId()
    {
        foreach (var type in Catalog.Resources.Concat(Catalog.DataSources))
        {
            var schema = Schemas.Resource(type);
            Assert.False(string.IsNullOrWhiteSpace(schema.Description));
            Walk(schema.Object, type.Name);
        }

        static void Walk(ObjectSchema obj, string where)
        {
            foreach (var a in obj.Attributes)
            {
                Assert.False(string.IsNullOrWhiteSpace(a.Description), $"{where}.{a.Name} has no description");
                Assert.NotEqual("id", a.Name);
                if (a.Type.Object is { } o) Walk(o, $"{where}.{a.Name}");
                if (a.Type.Element?.Object is { } e) Walk(e, $"{where}.{a.Name}[*]");
            }
        }
    }

    [Fact]
    public void UnknownPropertiesAndWrongTypesAreRefused()
    {
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<VmSpec>("""{"name":"a","nme":"b"}""", ModelJson.Options));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<VmSpec>("""{"name":"a","cpu":{"cores":"two"}}""", ModelJson.Options));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<VmSpec>("""{"name":"a","status":"running"}""", ModelJson.Options));
    }

    [Fact]
    public void AttributePathsRoundTrip()
    {
        foreach (var text in new[] { "name", "cpu.cores", "disks[\"scsi0\"].size_gib", "tags[2]", "a[\"we\\\"ird\"].b[0].c" })
            Assert.Equal(text, AttrPath.Parse(text).ToString());
        Assert.Equal(PathStepKind.Key, AttrPath.Parse("disks[\"scsi0\"].size_gib").Steps[1].Kind);
    }

    [Fact]
    public void DefaultsFillEffectiveValuesButKeepPresenceOnlyBlocksAbsent()
    {
        var spec = new VmSpec { Name = "a", Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 4 } } };
        var effective = Defaults.Apply(spec);
        Assert.Equal(1, effective.Cpu!.Cores);
        Assert.Equal("x86-64-v2-AES", effective.Cpu.Model);
        Assert.Equal(512, effective.Memory!.SizeMib);
        Assert.True(effective.Memory.Balloon!.Enabled);
        Assert.Equal("qcow2", effective.Disks!["scsi0"].Format);
        Assert.Equal("bios", effective.Firmware!.Type);
        Assert.Null(spec.Cpu); // the stored spec keeps what the user set
    }
}

public class SchemaConcurrencyTests
{
    [Fact]
    public async Task ConcurrentReadersNeverSeeAHalfBuiltSchema()
    {
        // Fresh process state is not available per test, so hammer Defaults.Apply, which reads nested schemas.
        var tasks = Enumerable.Range(0, 16).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 50; i++)
            {
                var effective = Defaults.Apply(new VmSpec { Name = "a", Firmware = new FirmwareSpec { Type = "uefi" } });
                Assert.NotNull(effective.Firmware!.EfiVars);
                Assert.Equal("4m", effective.Firmware.EfiVars.Template);
            }
        }));
        await Task.WhenAll(tasks);
    }
}
