using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// kvm_storage_pool types through the real terraform and a real kvm-agent: each type's settings are checked at plan at
/// their own attribute, kvm_host says which types the host serves, and a pool the host cannot serve (here: lvm-thin and
/// nfs, the kernel has neither device-mapper nor an NFS client) fails at apply with the agent's reason and leaves
/// nothing behind.
/// </summary>
[Collection(TerraformCollection.Name)]
public class StoragePoolTypeTests(TerraformFixture terraform)
{
    [Fact]
    public async Task Pool_types_are_checked_at_plan_and_a_type_the_host_cannot_serve_fails_at_apply_with_its_reason()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var host = await agent.Client.GetHostAsync();
        var tf = new TerraformWorkspace(terraform, TerraformWorkspace.Header(agent) + """
            resource "kvm_storage_pool" "thin" {
              name         = "thin"
              type         = "lvm-thin"
              volume_group = "vg0"
            }

            resource "kvm_storage_pool" "nas" {
              name   = "nas"
              type   = "nfs"
              server = "127.0.0.1"
              export = "/srv/kvm"
              path   = "/mnt/kvm"
            }
            """);
        var plan = tf.Run("plan", "-input=false", "-no-color");
        Assert.NotEqual(0, plan.ExitCode);
        Assert.Contains("is required for a pool of type \"lvm-thin\".", Flat(plan.Output), StringComparison.Ordinal);
        Assert.Contains("does not apply to an nfs pool", Flat(plan.Output), StringComparison.Ordinal);

        const string HostData = """
            data "kvm_host" "this" {}

            output "types" { value = data.kvm_host.this.storage_pool_types }
            output "unavailable" { value = data.kvm_host.this.storage_pool_types_unavailable }
            """;
        tf.Write(TerraformWorkspace.Header(agent) + HostData);
        tf.Apply();
        var outputs = tf.Outputs();
        Assert.Contains("dir", host.StoragePoolTypes!);
        Assert.Equal(host.StoragePoolTypes, outputs["types"]!["value"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(host.StoragePoolTypesUnavailable!.OrderBy(p => p.Key).Select(p => (p.Key, p.Value)),
            outputs["unavailable"]!["value"]!.AsObject().OrderBy(p => p.Key).Select(p => (p.Key, (string)p.Value!)));

        tf.Write(TerraformWorkspace.Header(agent) + HostData + """

            resource "kvm_storage_pool" "thin" {
              name         = "thin"
              type         = "lvm-thin"
              volume_group = "kvmtf-no-such-vg"
              thin_pool    = "data"
            }
            """);
        var failed = tf.ApplyFails();
        // On a kernel without device-mapper the refusal names it; where lvm-thin is served, the missing volume group is named.
        var expected = host.StoragePoolTypesUnavailable!.GetValueOrDefault("lvm-thin") ?? "volume group \"kvmtf-no-such-vg\" does not exist";
        Assert.Contains(Flat(expected), Flat(failed.Output), StringComparison.Ordinal);
        Assert.DoesNotContain("thin", (await agent.Client.ListStoragePoolsAsync()).Select(p => p.Name));
        tf.Destroy();
    }

    // Terraform wraps diagnostics at the terminal width: compare without line breaks and the box-drawing prefix.
    private static string Flat(string text) =>
        string.Join(' ', text.Replace("│", " ", StringComparison.Ordinal).Split([' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries));
}
