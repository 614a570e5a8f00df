using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Pulumi.Schema;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;
using Kvm.Tests.Shared;
using Xunit.Abstractions;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// One lifecycle scenario, written once as data, run through the real terraform with the built
/// terraform-provider-kvm and through the engine harness with the built pulumi-resource-kvm, each
/// against its own real kvm-agent (QEMU under TCG, the test guest running). After every step both
/// agents must report the same VMs, volumes and storage pools (normalised: process ids, start times,
/// ports and the per-side directories masked), and after destroy both hosts must hold the same
/// leftovers: no process of either agent, and the same files in its data, run and pool directories.
/// </summary>
public sealed partial class CrossCheckTests(ITestOutputHelper output)
{
    /// <summary>A resource in the scenario: kind (Terraform's suffix), name, and its settings as agent JSON.</summary>
    private sealed record ScenarioResource(string Kind, string Name, JsonObject Settings);

    // References are "ref:<kind>.<name>.<attribute>"; "{root}", "{kernel}", "{initrd}" are per side.
    private static IReadOnlyList<ScenarioResource> Scenario(string description, int volumeGib, int cores) =>
    [
        new("storage_pool", "pool", new JsonObject { ["name"] = "xpool", ["path"] = "{root}/pool" }),
        new("volume", "data", new JsonObject { ["name"] = "data.qcow2", ["pool"] = "ref:storage_pool.pool.name", ["size_gib"] = volumeGib }),
        new("vm", "web", new JsonObject
        {
            ["name"] = "xcheck",
            ["description"] = description,
            ["kernel"] = "{kernel}",
            ["initrd"] = "{initrd}",
            ["cmdline"] = "console=ttyS0",
            ["cpu"] = new JsonObject { ["cores"] = cores },
            ["memory"] = new JsonObject { ["size_mib"] = 128 },
            // The test guest ignores ACPI power-off: do not wait long before stopping it by force.
            ["update_policy"] = new JsonObject { ["shutdown_timeout_seconds"] = 3 },
            ["disks"] = new JsonObject
            {
                ["scsi0"] = new JsonObject { ["size_gib"] = 1 },
                ["scsi1"] = new JsonObject { ["volume_id"] = "ref:volume.data.volume_id" },
            },
        }),
    ];

    private static readonly (string Label, IReadOnlyList<ScenarioResource> Resources)[] Steps =
    [
        ("create", Scenario("one", 1, 1)),
        ("update in place (description, volume grown live)", Scenario("two", 2, 1)),
        ("update needing a restart (cores)", Scenario("two", 2, 2)),
        ("destroy", []),
    ];

    private static readonly Dictionary<string, string> Tokens = new(StringComparer.Ordinal)
    {
        ["storage_pool"] = "kvm:index/storagePool:StoragePool",
        ["volume"] = "kvm:index/volume:Volume",
        ["vm"] = "kvm:index/vm:Vm",
    };

    private sealed record Side(AgentProcess Agent, string Root);

    [Fact]
    public async Task TerraformAndPulumiLeaveTheHostInTheSameState()
    {
        var repo = Repo.Root;
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(repo, ".work", "guest", "vmlinuz");
        var initrd = Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(repo, ".work", "guest", "initrd.img");
        Assert.True(File.Exists(kernel) && File.Exists(initrd), $"the test guest is missing ({kernel}); run `source scripts/lib.sh; ensure_test_guest` and set KVM_TEST_KERNEL/KVM_TEST_INITRD");

        using var terraform = new OfflineTerraform(repo);
        using var tfAgent = await AgentProcess.StartAsync(repo);
        using var pulumiAgent = await AgentProcess.StartAsync(repo);
        var tf = new Side(tfAgent, Directory.CreateTempSubdirectory("kvm-x-tf-").FullName);
        var pu = new Side(pulumiAgent, Directory.CreateTempSubdirectory("kvm-x-pu-").FullName);
        var workDir = Path.Combine(terraform.Root, "work");
        Directory.CreateDirectory(workDir);
        await using var session = await EngineSession.StartAsync();
        await session.ConfigureAsync(EngineSession.Config(pulumiAgent.Endpoint, pulumiAgent.Token));
        var deployment = new Deployment(session);
        try
        {
            foreach (var (label, resources) in Steps)
            {
                output.WriteLine($"== {label}");
                string Local(string text) => text.Replace("{kernel}", kernel, StringComparison.Ordinal).Replace("{initrd}", initrd, StringComparison.Ordinal);
                if (resources.Count == 0)
                {
                    terraform.RunChecked(workDir, 0, "destroy", "-auto-approve", "-input=false", "-no-color");
                    await deployment.DestroyAsync();
                }
                else
                {
                    File.WriteAllText(Path.Combine(workDir, "main.tf"), Local(ToHcl(resources, tfAgent, tf.Root)));
                    if (label == Steps[0].Label)
                        terraform.RunChecked(workDir, 0, "init", "-input=false", "-no-color");
                    terraform.RunChecked(workDir, 0, "apply", "-auto-approve", "-input=false", "-no-color");
                    terraform.RunChecked(workDir, 0, "plan", "-input=false", "-no-color", "-detailed-exitcode");

                    var program = ToProgram(resources, pu.Root, Local);
                    await deployment.UpAsync(program);
                    // The next preview is empty, as terraform's plan was.
                    Assert.All(await deployment.PreviewAsync(program), step => Assert.Equal("same", step.Op));
                }

                var tfView = await SnapshotAsync(tf);
                var puView = await SnapshotAsync(pu);
                output.WriteLine(tfView.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                Assert.True(JsonNode.DeepEquals(tfView, puView),
                    $"after {label} the agents differ:\nterraform: {tfView.ToJsonString()}\npulumi:    {puView.ToJsonString()}");
                if (label.StartsWith("update needing", StringComparison.Ordinal))
                {
                    var vm = (await pulumiAgent.Client.ListVmsAsync()).Single();
                    Assert.Equal("running", vm.Status);
                    Assert.Equal(2, vm.Cpu!.Cores);
                    Assert.Empty(vm.PendingChanges ?? []);
                }
            }

            Assert.Empty(await tfAgent.Client.ListVmsAsync());
            Assert.Empty(await pulumiAgent.Client.ListVmsAsync());
            var tfLeft = Leftovers(tf);
            var puLeft = Leftovers(pu);
            output.WriteLine("leftovers: " + string.Join(", ", tfLeft));
            Assert.Equal(tfLeft, puLeft);
            Assert.DoesNotContain(tfLeft, entry => entry.StartsWith("process", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var root in new[] { tf.Root, pu.Root })
                Directory.Delete(root, recursive: true);
        }
    }

    private static string ToHcl(IReadOnlyList<ScenarioResource> resources, AgentProcess agent, string root)
    {
        var text = new StringBuilder($$"""
            terraform {
              required_providers {
                kvm = { source = "kvm/kvm" }
              }
            }

            provider "kvm" {
              endpoint = "{{agent.Endpoint}}"
              token    = "{{agent.Token}}"
            }

            """);
        foreach (var resource in resources)
        {
            text.Append($"resource \"kvm_{resource.Kind}\" \"{resource.Name}\" {{\n");
            foreach (var (name, value) in resource.Settings)
                text.Append($"  {name} = {Hcl(value, root)}\n");
            text.Append("}\n\n");
        }
        return text.ToString();
    }

    // JSON values are HCL expressions (objects take "key" = value); references become traversals.
    private static string Hcl(JsonNode? node, string root) => node switch
    {
        JsonObject obj => "{ " + string.Join(", ", obj.Select(p => $"{JsonSerializer.Serialize(p.Key)} = {Hcl(p.Value, root)}")) + " }",
        JsonArray array => "[" + string.Join(", ", array.Select(e => Hcl(e, root))) + "]",
        JsonValue value when value.GetValueKind() == JsonValueKind.String && value.GetValue<string>() is var s =>
            s.StartsWith("ref:", StringComparison.Ordinal) ? "kvm_" + s[4..]
                : JsonSerializer.Serialize(s.Replace("{root}", root, StringComparison.Ordinal)).Replace("${", "$${", StringComparison.Ordinal),
        _ => node?.ToJsonString() ?? "null",
    };

    private static List<Goal> ToProgram(IReadOnlyList<ScenarioResource> resources, string root, Func<string, string> local) =>
        [.. resources.Select(resource =>
        {
            var token = Tokens[resource.Kind];
            var settings = JsonNode.Parse(local(resource.Settings.ToJsonString().Replace("{root}", root, StringComparison.Ordinal)))!.AsObject();
            var encoded = PropertyCodec.Encode(settings, ResourceKind.ForToken(token)!.Shape);
            return new Goal(token, resource.Name, outputOf => Resolve(encoded, outputOf));
        })];

    // "ref:volume.data.volume_id" → the output volumeId of resource "data", as the engine would pass it.
    private static Struct Resolve(Struct inputs, OutputOf outputOf)
    {
        var resolved = inputs.Clone();
        Walk(resolved);
        return resolved;

        void Walk(Struct s)
        {
            foreach (var key in s.Fields.Keys.ToList())
            {
                var value = s.Fields[key];
                if (value.KindCase == Value.KindOneofCase.StructValue)
                {
                    Walk(value.StructValue);
                }
                else if (value.KindCase == Value.KindOneofCase.StringValue && value.StringValue.StartsWith("ref:", StringComparison.Ordinal))
                {
                    var parts = value.StringValue[4..].Split('.');
                    s.Fields[key] = outputOf(parts[1], Naming.ToCamel(parts[2]));
                }
            }
        }
    }

    /// <summary>What the agent reports, as model JSON, with per-run values masked.</summary>
    private static async Task<JsonObject> SnapshotAsync(Side side)
    {
        var client = side.Agent.Client;
        var view = new JsonObject
        {
            ["vms"] = Json(await client.ListVmsAsync()),
            ["volumes"] = Json(await client.ListVolumesAsync()),
            ["storage_pools"] = Json(await client.ListStoragePoolsAsync()),
        };
        return (JsonObject)Normalise(view, side)!;
    }

    private static JsonNode Json<T>(IReadOnlyList<T> items) =>
        JsonSerializer.SerializeToNode(items.ToList(), ModelJson.Options)!;

    // Values that differ between two runs of the same scenario on two agents.
    private static readonly HashSet<string> Volatile = new(StringComparer.Ordinal)
    {
        "pid", "started_at", "console_endpoint", "vnc_port", "available_bytes", "capacity_bytes",
    };

    private static JsonNode? Normalise(JsonNode? node, Side side) => node switch
    {
        JsonObject obj => new JsonObject(obj
            .Where(p => !Volatile.Contains(p.Key) && !p.Key.EndsWith("_port", StringComparison.Ordinal))
            .Select(p => KeyValuePair.Create(p.Key, Normalise(p.Value, side)))),
        JsonArray array => new JsonArray([.. array.Select(e => Normalise(e, side))]),
        JsonValue value when value.GetValueKind() == JsonValueKind.String => Mask(value.GetValue<string>(), side),
        _ => node?.DeepClone(),
    };

    private static string Mask(string text, Side side) => text
        .Replace(side.Agent.DataDirectory, "<data>", StringComparison.Ordinal)
        .Replace(side.Agent.RunDirectory, "<run>", StringComparison.Ordinal)
        .Replace(side.Root, "<root>", StringComparison.Ordinal);

    /// <summary>What is left on the host: processes that name the agent's directories, and files in them.</summary>
    private static List<string> Leftovers(Side side)
    {
        var left = new List<string>();
        foreach (var proc in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            // The agent itself names its directories; anything else that does is a leftover (QEMU, qemu-img…).
            var argv0 = cmdline.Split(' ')[0];
            if (argv0.EndsWith("kvm-agent", StringComparison.Ordinal))
                continue;
            if (cmdline.Contains(side.Agent.DataDirectory, StringComparison.Ordinal) || cmdline.Contains(side.Agent.RunDirectory, StringComparison.Ordinal)
                || cmdline.Contains(side.Root, StringComparison.Ordinal))
                left.Add("process " + Mask(cmdline, side));
        }
        foreach (var (dir, label) in new[] { (side.Agent.DataDirectory, "<data>"), (side.Agent.RunDirectory, "<run>"), (side.Root, "<root>") })
        {
            if (!Directory.Exists(dir))
                continue;
            foreach (var entry in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories))
                left.Add(label + "/" + Generated().Replace(Path.GetRelativePath(dir, entry), "<key>"));
        }
        left.Sort(StringComparer.Ordinal);
        return left;
    }

    // Idempotency keys and similar names are random per run.
    [GeneratedRegex("[0-9a-f]{32}")]
    private static partial Regex Generated();
}
