using System.Text.Json.Nodes;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// One terraform work directory against one agent: the commands a lifecycle test runs, each asserting
/// its exit code with terraform's output in the failure message.
/// </summary>
public sealed class TerraformWorkspace
{
    private readonly TerraformFixture _terraform;
    private readonly Dictionary<string, string> _environment;
    private readonly List<string> _variables = [];

    public TerraformWorkspace(TerraformFixture terraform, string mainTf, IReadOnlyDictionary<string, string>? environment = null)
    {
        _terraform = terraform;
        _environment = new Dictionary<string, string>(environment ?? new Dictionary<string, string>());
        Directory = terraform.NewWorkDirectory(mainTf);
        terraform.Init(Directory);
    }

    public string Directory { get; }

    /// <summary>The provider block every lifecycle configuration starts with.</summary>
    public static string Header(AgentProcess agent, string? hosts = null) => $$"""
        terraform {
          required_providers {
            kvm = { source = "kvm/kvm" }
          }
        }

        provider "kvm" {
          endpoint = "{{agent.Endpoint}}"
          token    = "{{agent.Token}}"
          {{hosts ?? ""}}
        }

        """;

    /// <summary>A `-var name=value` passed to plan, apply and destroy.</summary>
    public TerraformWorkspace Var(string name, string value)
    {
        _variables.Add("-var");
        _variables.Add($"{name}={value}");
        return this;
    }

    public void Write(string mainTf) => File.WriteAllText(Path.Combine(Directory, "main.tf"), mainTf);

    public CommandResult Run(params string[] args) => _terraform.Run(Directory, _environment, args);

    private CommandResult RunWithVariables(params string[] args) => Run([.. args, .. _variables]);

    public CommandResult Apply()
    {
        var apply = RunWithVariables("apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, "terraform apply failed:\n" + apply.Output);
        return apply;
    }

    public CommandResult ApplyFails()
    {
        var apply = RunWithVariables("apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode != 0, "terraform apply should have failed:\n" + apply.Output);
        return apply;
    }

    public void AssertEmptyPlan()
    {
        var plan = RunWithVariables("plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 0, "expected no changes:\n" + plan.Output);
    }

    public string PlanWithChanges()
    {
        var plan = RunWithVariables("plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 2, "expected changes:\n" + plan.Output);
        return plan.Stdout;
    }

    public void Destroy()
    {
        var destroy = RunWithVariables("destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, "terraform destroy failed:\n" + destroy.Output);
    }

    public void StateRm(string address)
    {
        var rm = Run("state", "rm", "-no-color", address);
        Assert.True(rm.ExitCode == 0, rm.Output);
    }

    public void ImportCli(string address, string id)
    {
        var import = RunWithVariables("import", "-input=false", "-no-color", address, id);
        Assert.True(import.ExitCode == 0, $"terraform import {address} {id} failed:\n" + import.Output);
    }

    /// <summary>
    /// state rm, then import by the CLI (plan empty), state rm again, then by an import block (plan says
    /// "1 to import", apply, plan empty): both ways terraform imports.
    /// </summary>
    public void RoundTripImport(string mainTf, string address, string id)
    {
        StateRm(address);
        ImportCli(address, id);
        AssertEmptyPlan();
        StateRm(address);
        Write(mainTf + $"\nimport {{\n  to = {address}\n  id = \"{id}\"\n}}\n");
        var plan = RunWithVariables("plan", "-input=false", "-no-color");
        Assert.True(plan.ExitCode == 0, plan.Output);
        Assert.Contains("1 to import, 0 to add, 0 to change, 0 to destroy", plan.Stdout, StringComparison.Ordinal);
        Apply();
        Write(mainTf);
        AssertEmptyPlan();
    }

    public JsonNode State(string address)
    {
        var show = Run("show", "-json", "-no-color");
        Assert.True(show.ExitCode == 0, show.Output);
        var resources = JsonNode.Parse(show.Stdout)!["values"]!["root_module"]!["resources"]!.AsArray();
        return resources.Single(r => (string)r!["address"]! == address)!["values"]!;
    }

    public bool InState(string address)
    {
        var list = Run("state", "list", "-no-color");
        return list.ExitCode == 0 && list.Stdout.Split('\n').Contains(address);
    }

    public JsonNode Outputs()
    {
        var output = Run("output", "-json", "-no-color");
        Assert.True(output.ExitCode == 0, output.Output);
        return JsonNode.Parse(output.Stdout)!;
    }
}

/// <summary>What the agent keeps in its data directory, to prove that a destroy left nothing behind.</summary>
public static class HostFiles
{
    /// <summary>The agent's data directory: the built-in pool lives at DATA/pools/default.</summary>
    public static async Task<string> DataDirectoryAsync(AgentProcess agent)
    {
        var pool = (await agent.Client.GetStoragePoolAsync("default")).Value;
        return Path.GetDirectoryName(Path.GetDirectoryName(pool.Path!))!;
    }

    /// <summary>Every file under <paramref name="directory"/>, relative, sorted.</summary>
    public static IReadOnlyList<string> Files(string directory) =>
        System.IO.Directory.Exists(directory)
            ? System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(directory, f)).Order(StringComparer.Ordinal).ToList()
            : [];
}
