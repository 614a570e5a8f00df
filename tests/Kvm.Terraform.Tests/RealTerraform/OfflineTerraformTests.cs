using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>The real terraform against the built provider, with no agent: schema, validation, plans of new resources.</summary>
[Collection(TerraformCollection.Name)]
public class OfflineTerraformTests(TerraformFixture terraform)
{
    // Nothing listens there: any agent call would show up as a connection error.
    private const string Header = """
        terraform {
          required_providers {
            kvm = { source = "kvm/kvm" }
          }
        }

        provider "kvm" {
          endpoint = "http://127.0.0.1:9"
          token    = "test"
        }

        """;

    [Fact]
    public void Providers_schema_matches_the_golden_file()
    {
        var dir = terraform.NewWorkDirectory(Header + """resource "kvm_vm" "a" { name = "a" }""");
        terraform.Init(dir);
        var result = terraform.Run(dir, "providers", "schema", "-json");
        Assert.True(result.ExitCode == 0, result.Output);
        var actual = Normalize(result.Stdout);
        var golden = Path.Combine(terraform.RepoRoot, "tests", "Kvm.Terraform.Tests", "Golden", "providers-schema.json");
        if (Environment.GetEnvironmentVariable("KVM_UPDATE_GOLDEN") == "1" || !File.Exists(golden))
            File.WriteAllText(golden, actual);
        Assert.Equal(File.ReadAllText(golden), actual);
    }

    [Theory]
    [InlineData("cpu = { cores = 0 }", "cpu.cores", "out of range")]
    [InlineData("network_interfaces = { net0 = { mac = \"52:54:00:zz:00:01\" } }", "network_interfaces[\"net0\"].mac", "six hex byte pairs")]
    [InlineData("disks = { usb0 = { size_gib = 1 } }", "disks[\"usb0\"]", "not a valid key")]
    [InlineData("disks = { scsi0 = { size_gib = 1, cache = \"fast\" } }", "disks[\"scsi0\"].cache", "\"fast\" is not one of")]
    [InlineData("timeouts {\n    create = \"soon\"\n  }", "timeouts.create", "not a duration")]
    public void Bad_values_fail_at_plan_naming_the_attribute(string setting, string attribute, string message)
    {
        var dir = terraform.NewWorkDirectory(Header + $$"""
            resource "kvm_vm" "bad" {
              name = "bad"
              {{setting}}
            }
            """);
        terraform.Init(dir);
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color");
        Assert.True(plan.ExitCode == 1, plan.Output);
        var output = Unwrap(plan.Output);
        Assert.Contains(attribute, output, StringComparison.Ordinal);
        Assert.Contains(message, output, StringComparison.Ordinal);
        Assert.DoesNotContain("connection refused", output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Planning_new_resources_needs_no_agent()
    {
        var dir = terraform.NewWorkDirectory(Header + """
            variable "kernel" { default = "/boot/vmlinuz" }

            resource "kvm_volume" "data" {
              name     = "data.qcow2"
              size_gib = 1
            }

            resource "kvm_vm" "a" {
              name   = "a"
              kernel = var.kernel
              cpu    = { cores = 2 }
              disks = {
                scsi0 = { size_gib = 1 }
                scsi1 = { volume_id = kvm_volume.data.volume_id }
              }
              tags = ["b", "a"]
              timeouts {
                create = "5m"
              }
            }
            """);
        terraform.Init(dir);
        Assert.Equal(0, terraform.Run(dir, "validate", "-no-color").ExitCode);
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 2, plan.Output);
        Assert.Contains("Plan: 2 to add, 0 to change, 0 to destroy.", plan.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"vm_id +?= \(known after apply\)", plan.Stdout); // alignment follows the longest attribute name
    }

    [Fact]
    public void An_unknown_provider_endpoint_does_not_break_planning_new_resources()
    {
        var dir = terraform.NewWorkDirectory("""
            terraform {
              required_providers {
                kvm = { source = "kvm/kvm" }
              }
            }

            resource "kvm_network" "lab" {
              name = "kvmlab0"
            }

            provider "kvm" {
              alias    = "second"
              endpoint = "http://127.0.0.1:${kvm_network.lab.effective_mtu}"
            }

            resource "kvm_network" "other" {
              provider = kvm.second
              name     = "kvmlab1"
            }
            """);
        terraform.Init(dir);
        var plan = terraform.Run(dir, new Dictionary<string, string> { ["KVM_ENDPOINT"] = "http://127.0.0.1:9" }, "plan", "-input=false", "-no-color");
        Assert.True(plan.ExitCode == 0, plan.Output);
        Assert.Contains("Plan: 2 to add", plan.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("quickstart")]
    [InlineData("uefi")]
    [InlineData("multi-disk")]
    [InlineData("lab-network")]
    [InlineData("cloud-init")]
    [InlineData("two-hosts")]
    [InlineData("storage-pool")]
    [InlineData("host-facts")]
    [InlineData("guest-agent")]
    public void Every_example_is_valid(string scenario)
    {
        var dir = terraform.NewWorkDirectory(File.ReadAllText(Path.Combine(terraform.RepoRoot, "examples", "terraform", scenario, "main.tf")));
        terraform.Init(dir);
        var validate = terraform.Run(dir, "validate", "-no-color");
        Assert.True(validate.ExitCode == 0, validate.Output);
    }

    // Terraform wraps long diagnostic lines; join them back so messages can be searched.
    private static string Unwrap(string text) => string.Join(' ', text.Split('\n').Select(l => l.Trim()));

    private static string Normalize(string json)
    {
        var node = JsonNode.Parse(json)!;
        return Sorted(node)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

        static JsonNode? Sorted(JsonNode? node) => node switch
        {
            JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
            JsonArray a => new JsonArray([.. a.Select(Sorted)]),
            null => null,
            _ => node.DeepClone(),
        };
    }
}
