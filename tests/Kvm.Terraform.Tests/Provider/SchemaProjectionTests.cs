using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;
using NestingMode = Kvm.Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode;

namespace Kvm.Terraform.Tests.Provider;

public class SchemaProjectionTests
{
    [Fact]
    public void Every_model_attribute_appears_in_its_resource_schema()
    {
        foreach (var type in Catalog.Resources)
        {
            var model = Schemas.Resource(type);
            var resource = TerraformSchema.FindResource(model.TerraformName);
            Assert.NotNull(resource);
            AssertCovers(model.Object, resource!.Block.Attributes, model.TerraformName);
        }
        foreach (var type in Catalog.DataSources)
        {
            var model = Schemas.Resource(type);
            var dataSource = TerraformSchema.FindDataSource(model.TerraformName);
            Assert.NotNull(dataSource);
            AssertCovers(model.Object, dataSource!.Block.Attributes, model.TerraformName);
        }

        static void AssertCovers(ObjectSchema model, IReadOnlyList<TfAttribute> attributes, string where)
        {
            foreach (var a in model.Attributes)
            {
                var projected = attributes.SingleOrDefault(x => x.Name == a.Name);
                Assert.True(projected is not null, $"{where}.{a.Name} is missing");
                if (projected!.Nested is { } nested)
                    AssertCovers(a.Type.Object ?? a.Type.Element!.Object!, nested.Attributes, $"{where}.{a.Name}");
            }
        }
    }

    [Fact]
    public void Objects_and_device_maps_are_nested_attributes_and_primitive_collections_are_types()
    {
        var vm = TerraformSchema.FindResource("kvm_vm")!.Block;
        Assert.Equal(NestingMode.Single, vm.Find("cpu")!.Nested!.Nesting);
        Assert.Equal(NestingMode.Single, vm.Find("firmware")!.Nested!.Nesting);
        Assert.Equal(NestingMode.Single, vm.Find("firmware")!.Nested!.Find("efi_vars")!.Nested!.Nesting);
        Assert.Equal(NestingMode.Map, vm.Find("disks")!.Nested!.Nesting);
        Assert.Equal(NestingMode.Map, vm.Find("network_interfaces")!.Nested!.Nesting);
        Assert.Equal(CtyType.Set(CtyType.String), vm.Find("tags")!.Type);
        Assert.Equal(CtyType.List(CtyType.String), vm.Find("boot_order")!.Type);
        Assert.Equal(CtyType.Map(CtyType.String), vm.Find("mac_addresses")!.Type);
        Assert.Equal(CtyType.Number, vm.Find("vm_id")!.Type);
    }

    [Fact]
    public void Read_only_is_computed_vm_id_is_optional_and_computed_and_other_settings_are_not_computed()
    {
        var vm = TerraformSchema.FindResource("kvm_vm")!.Block;
        Assert.Equal(TfPresence.Computed, vm.Find("status")!.Presence);
        Assert.Equal(TfPresence.Computed, vm.Find("id")!.Presence);
        Assert.Equal(TfPresence.OptionalComputed, vm.Find("vm_id")!.Presence);
        Assert.Equal(TfPresence.Required, vm.Find("name")!.Presence);
        Assert.Equal(TfPresence.Optional, vm.Find("machine")!.Presence);
        Assert.Equal(TfPresence.Optional, vm.Find("host")!.Presence);
        Assert.Equal(TfPresence.Optional, vm.Find("disks")!.Nested!.Find("cache")!.Presence);
        var proto = vm.Find("machine")!.ToProto();
        Assert.True(proto.Optional);
        Assert.False(proto.Computed);
        Assert.Contains("Default: `q35`", proto.Description, StringComparison.Ordinal);
        Assert.Contains("restart", vm.Find("machine")!.Description, StringComparison.Ordinal);
        Assert.Contains("forces replacement", vm.Find("disks")!.Nested!.Find("format")!.Description, StringComparison.Ordinal);
        Assert.Contains("live", vm.Find("power_state")!.Description, StringComparison.Ordinal);
        Assert.True(TerraformSchema.Provider.Find("token")!.ToProto().Sensitive);
    }

    [Fact]
    public void Only_kvm_vm_has_a_timeouts_block()
    {
        Assert.True(TerraformSchema.FindResource("kvm_vm")!.HasTimeouts);
        Assert.False(TerraformSchema.FindResource("kvm_volume")!.HasTimeouts);
        Assert.Equal(CtyType.Object(("create", CtyType.String), ("delete", CtyType.String), ("update", CtyType.String)),
            TerraformSchema.FindResource("kvm_vm")!.Type.AttributeType("timeouts"));
    }

    [Fact]
    public void The_implied_type_matches_the_type_terraform_derives_from_the_wire_schema()
    {
        var response = KvmProvider.ProviderSchema();
        foreach (var (name, schema) in response.ResourceSchemas)
            Assert.Equal(ImpliedFromWire(schema.Block), TerraformSchema.FindResource(name)!.Type);
        foreach (var (name, schema) in response.DataSourceSchemas)
            Assert.Equal(ImpliedFromWire(schema.Block), TerraformSchema.FindDataSource(name)!.Type);
        Assert.Equal(ImpliedFromWire(response.Provider.Block), TerraformSchema.Provider.ImpliedType);
    }

    [Fact]
    public void Wire_schemas_pass_the_rules_terraform_enforces()
    {
        var response = KvmProvider.ProviderSchema();
        Assert.NotNull(response.Provider.Block);
        Assert.True(response.ServerCapabilities.GetProviderSchemaOptional);
        Assert.Equal(["kvm_image", "kvm_network", "kvm_snapshot", "kvm_storage_pool", "kvm_vm", "kvm_volume"], response.ResourceSchemas.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["kvm_host", "kvm_vm", "kvm_vm_addresses"], response.DataSourceSchemas.Keys.Order(StringComparer.Ordinal));
        foreach (var schema in response.ResourceSchemas.Values.Concat(response.DataSourceSchemas.Values).Append(response.Provider))
            CheckBlock(schema.Block);

        static void CheckBlock(Protocol.Tfplugin6.Schema.Types.Block block)
        {
            Assert.NotNull(block);
            var names = new HashSet<string>();
            foreach (var a in block.Attributes)
                CheckAttribute(a, names);
            foreach (var b in block.BlockTypes)
            {
                Assert.True(names.Add(b.TypeName));
                CheckBlock(b.Block);
            }
        }

        static void CheckAttribute(Protocol.Tfplugin6.Schema.Types.Attribute a, HashSet<string> names)
        {
            Assert.Matches("^[a-z0-9_]+$", a.Name);
            Assert.True(names.Add(a.Name), $"{a.Name} twice");
            Assert.True(a.Required || a.Optional || a.Computed, a.Name);
            Assert.False(a.Required && (a.Optional || a.Computed), a.Name);
            Assert.True(a.Type.IsEmpty != (a.NestedType is null), $"{a.Name}: exactly one of type and nested_type");
            Assert.False(string.IsNullOrWhiteSpace(a.Description), a.Name);
            if (!a.Type.IsEmpty)
                CtyType.ParseJson(a.Type.Span);
            else
            {
                var inner = new HashSet<string>();
                foreach (var x in a.NestedType!.Attributes)
                {
                    CheckAttribute(x, inner);
                    if (a.Computed && !a.Optional)
                        Assert.True(x.Computed && !x.Optional && !x.Required, $"{a.Name}.{x.Name} of a computed object must be computed");
                }
            }
        }
    }

    // Terraform's configschema.ImpliedType, written independently from the wire form.
    private static CtyType ImpliedFromWire(Protocol.Tfplugin6.Schema.Types.Block block) =>
        CtyType.Object(block.Attributes.Select(a => new KeyValuePair<string, CtyType>(a.Name, AttributeType(a)))
            .Concat(block.BlockTypes.Select(b => new KeyValuePair<string, CtyType>(b.TypeName, b.Nesting switch
            {
                Protocol.Tfplugin6.Schema.Types.NestedBlock.Types.NestingMode.Single => ImpliedFromWire(b.Block),
                Protocol.Tfplugin6.Schema.Types.NestedBlock.Types.NestingMode.List => CtyType.List(ImpliedFromWire(b.Block)),
                _ => throw new InvalidOperationException(b.Nesting.ToString()),
            }))));

    private static CtyType AttributeType(Protocol.Tfplugin6.Schema.Types.Attribute a)
    {
        if (!a.Type.IsEmpty)
            return CtyType.ParseJson(a.Type.Span);
        var obj = CtyType.Object(a.NestedType.Attributes.Select(x => new KeyValuePair<string, CtyType>(x.Name, AttributeType(x))));
        return a.NestedType.Nesting switch
        {
            NestingMode.Single => obj,
            NestingMode.Map => CtyType.Map(obj),
            NestingMode.List => CtyType.List(obj),
            NestingMode.Set => CtyType.Set(obj),
            _ => throw new InvalidOperationException(a.NestedType.Nesting.ToString()),
        };
    }

    [Fact]
    public void Schema_type_json_is_valid_json()
    {
        foreach (var schema in KvmProvider.ProviderSchema().ResourceSchemas.Values)
            foreach (var a in schema.Block.Attributes.Where(a => !a.Type.IsEmpty))
                JsonDocument.Parse(a.Type.Memory).Dispose();
    }
}
