using System.Text.Json.Nodes;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;

namespace Kvm.Terraform.Tests.Provider;

/// <summary>Builds resource values from JSON written the way users read HCL.</summary>
internal static class Values
{
    public static TfResourceType VmType => TerraformSchema.FindResource("kvm_vm")!;

    public static TfResourceType VolumeType => TerraformSchema.FindResource("kvm_volume")!;

    public static CtyValue Of(TfResourceType resource, string json) =>
        CtyJsonNode.FromNode(JsonNode.Parse(json), resource.Type);

    public static CtyValue Unknown(CtyValue obj, string attribute) =>
        obj.WithAttr(attribute, CtyValue.Unknown(obj.Type.AttributeType(attribute)));
}
