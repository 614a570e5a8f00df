using System.Text;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;

namespace Kvm.Terraform.Tests.Docs;

/// <summary>
/// Renders docs/resources/*.md and docs/data-sources/*.md (the Terraform registry layout) from the
/// projected schema, so the pages say exactly what the model says, plus an example from examples/.
/// </summary>
public static class DocsGenerator
{
    public sealed record Page(string RelativePath, string Content);

    private static readonly Dictionary<string, (string Page, string Example)> ResourcePages = new(StringComparer.Ordinal)
    {
        ["kvm_vm"] = ("vm", "quickstart"),
        ["kvm_volume"] = ("volume", "multi-disk"),
        ["kvm_image"] = ("image", "image"),
        ["kvm_storage_pool"] = ("storage_pool", "storage-pool"),
        ["kvm_network"] = ("network", "lab-network"),
        ["kvm_snapshot"] = ("snapshot", "snapshots"),
    };

    private static readonly Dictionary<string, (string Page, string Example)> DataSourcePages = new(StringComparer.Ordinal)
    {
        ["kvm_host"] = ("host", "host-facts"),
        ["kvm_vm"] = ("vm", "host-facts"),
        ["kvm_vm_addresses"] = ("vm_addresses", "guest-agent"),
    };

    public static IEnumerable<Page> Render(string repoRoot)
    {
        foreach (var resource in TerraformSchema.Resources)
        {
            var (page, example) = ResourcePages[resource.TypeName];
            yield return new Page($"docs/resources/{page}.md",
                RenderPage(resource.TypeName, "Resource", resource.Block, Example(repoRoot, example), Import(resource)));
        }
        foreach (var dataSource in TerraformSchema.DataSources)
        {
            var (page, example) = DataSourcePages[dataSource.TypeName];
            yield return new Page($"docs/data-sources/{page}.md",
                RenderPage(dataSource.TypeName, "Data Source", dataSource.Block, Example(repoRoot, example), null));
        }
    }

    private static string Example(string repoRoot, string scenario) =>
        File.ReadAllText(Path.Combine(repoRoot, "examples", "terraform", scenario, "main.tf")).TrimEnd();

    private static string RenderPage(string typeName, string kind, TfBlock block, string example, string? import)
    {
        var sb = new StringBuilder();
        var summary = block.Description.Split(". ")[0].TrimEnd('.') + ".";
        sb.Append("---\n");
        sb.Append($"page_title: \"{typeName} {kind} - terraform-provider-kvm\"\n");
        sb.Append("subcategory: \"\"\n");
        sb.Append("description: |-\n");
        sb.Append($"  {summary}\n");
        sb.Append("---\n\n");
        sb.Append($"# {typeName} ({kind})\n\n");
        sb.Append(block.Description).Append("\n\n");
        sb.Append("<!-- Generated from the model by tests/Kvm.Terraform.Tests/Docs; regenerate with KVM_UPDATE_DOCS=1. -->\n\n");
        sb.Append("## Example Usage\n\n```terraform\n").Append(example).Append("\n```\n\n");

        var arguments = block.Attributes.Where(a => a.Presence != TfPresence.Computed).ToList();
        var attributes = block.Attributes.Where(a => a.Presence is TfPresence.Computed or TfPresence.OptionalComputed).ToList();
        var nested = new List<(string Anchor, string Title, TfObject Object)>();

        sb.Append("## Argument Reference\n\n");
        foreach (var a in arguments.OrderBy(a => a.Presence != TfPresence.Required))
            sb.Append(Line(a, "", nested));
        foreach (var b in block.BlockTypes)
        {
            sb.Append($"- `{b.TypeName}` (Block, optional) {b.Block.Description}\n");
            foreach (var a in b.Block.Attributes)
                sb.Append($"  - `{a.Name}` (String, optional) {a.Description}\n");
        }
        sb.Append('\n');
        if (attributes.Count > 0)
        {
            sb.Append("## Attribute Reference\n\nIn addition to the arguments, these are set from what the agent reports:\n\n");
            foreach (var a in attributes)
                sb.Append(Line(a, "", nested));
            sb.Append('\n');
        }
        for (var i = 0; i < nested.Count; i++)
        {
            var (anchor, title, obj) = nested[i];
            sb.Append($"<a id=\"{anchor}\"></a>\n### Nested schema: `{title}`\n\n");
            foreach (var a in obj.Attributes)
                sb.Append(Line(a, title + ".", nested));
            sb.Append('\n');
        }
        if (import is not null)
            sb.Append(import);
        return sb.ToString().TrimEnd() + "\n";
    }

    private static string Line(TfAttribute a, string prefix, List<(string, string, TfObject)> nested)
    {
        var flags = a.Presence switch
        {
            TfPresence.Required => "required",
            TfPresence.Optional => "optional",
            TfPresence.OptionalComputed => "optional, set by the agent when unset",
            _ => "read-only",
        };
        if (a.Sensitive)
            flags += ", sensitive";
        var text = a.Description;
        if (a.Nested is { } obj)
        {
            var title = prefix + a.Name;
            var anchor = "nested--" + title.Replace('.', '-');
            nested.Add((anchor, title, obj));
            text += $" See [`{title}`](#{anchor}).";
        }
        return $"- `{a.Name}` ({TypeWords(a)}, {flags}) {text}\n";
    }

    private static string TypeWords(TfAttribute a)
    {
        if (a.Nested is { } obj)
        {
            return obj.Nesting switch
            {
                Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.Map => "Map of Objects",
                Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.List => "List of Objects",
                Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.Set => "Set of Objects",
                _ => "Object",
            };
        }
        return Words(a.Type!);

        static string Words(CtyType t) => t.Kind switch
        {
            CtyKind.String => "String",
            CtyKind.Number => "Number",
            CtyKind.Bool => "Boolean",
            CtyKind.List => $"List of {Words(t.ElementType)}",
            CtyKind.Set => $"Set of {Words(t.ElementType)}",
            CtyKind.Map => $"Map of {Words(t.ElementType)}",
            _ => t.ToString(),
        };
    }

    private static string Import(TfResourceType resource)
    {
        var (id, sample, hostSample) = resource.IdAttribute switch
        {
            "vm_id" => ("the VM's `vm_id`", "100", "lab2/100"),
            "volume_id" => ("`<pool>/<name>`", "default/data.qcow2", "lab2/default/data.qcow2"),
            "image_id" => ("`<pool>/<name>`", "default/debian-12.qcow2", "lab2/default/debian-12.qcow2"),
            "snapshot_id" => ("`<vm_id>/<name>`", "100/before-upgrade", "lab2/100/before-upgrade"),
            _ => ("the `name`", "fast", "lab2/fast"),
        };
        var label = resource.TypeName.Replace("kvm_", "", StringComparison.Ordinal);
        return $$"""
            ## Import

            The import ID is {{id}}, prefixed with `<host>/` for a resource on another host of the provider's `hosts` map.
            After an import, `terraform plan` shows no changes when the configuration matches the {{label.Replace('_', ' ')}}.

            ```terraform
            import {
              to = {{resource.TypeName}}.example
              id = "{{sample}}"
            }
            ```

            ```shell
            terraform import {{resource.TypeName}}.example {{hostSample}}
            ```

            """;
    }
}
