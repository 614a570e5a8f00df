using System.Diagnostics;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>The result of one terraform command.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;
}

/// <summary>
/// Installs the provider built with this test run into a temporary filesystem_mirror (once per run),
/// and runs the real terraform offline against it in fresh work directories.
/// </summary>
public sealed class TerraformFixture : IDisposable
{
    public const string Version = "0.1.0";

    public TerraformFixture()
    {
        RepoRoot = FindRepoRoot();
        Root = Directory.CreateTempSubdirectory("kvm-tf-").FullName;
        MirrorPath = Path.Combine(Root, "mirror");
        var package = Path.Combine(MirrorPath, "registry.terraform.io", "kvm", "kvm", Version, "linux_amd64");
        Directory.CreateDirectory(package);
        foreach (var file in Directory.EnumerateFiles(ProviderBuildDirectory()))
            File.Copy(file, Path.Combine(package, Path.GetFileName(file)));
        CliConfigPath = Path.Combine(Root, "terraformrc");
        File.WriteAllText(CliConfigPath, $$"""
            provider_installation {
              filesystem_mirror {
                path    = "{{MirrorPath}}"
                include = ["registry.terraform.io/kvm/kvm"]
              }
            }
            """);
    }

    public string RepoRoot { get; }

    public string Root { get; }

    public string MirrorPath { get; }

    public string CliConfigPath { get; }

    /// <summary>A fresh work directory holding <paramref name="mainTf"/>.</summary>
    public string NewWorkDirectory(string mainTf)
    {
        var dir = Path.Combine(Root, "w-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "main.tf"), mainTf);
        return dir;
    }

    public CommandResult Run(string workDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("terraform")
        {
            WorkingDirectory = workDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["TF_CLI_CONFIG_FILE"] = CliConfigPath;
        start.Environment["CHECKPOINT_DISABLE"] = "1";
        start.Environment["TF_IN_AUTOMATION"] = "1";
        start.Environment.Remove("KVM_ENDPOINT");
        start.Environment.Remove("KVM_TOKEN");
        start.Environment.Remove("TF_LOG");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"terraform {string.Join(' ', args)} did not finish in 10 minutes");
        }
        return new CommandResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    public CommandResult Run(string workDirectory, params string[] args) => Run(workDirectory, null, args);

    /// <summary>terraform init, which must succeed offline.</summary>
    public void Init(string workDirectory)
    {
        var init = Run(workDirectory, "init", "-input=false", "-no-color");
        Assert.True(init.ExitCode == 0, init.Output);
    }

    private string ProviderBuildDirectory()
    {
        // Same configuration as this test assembly: bin/<Configuration>/net10.0.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var dir = Path.Combine(RepoRoot, "provider", "Kvm.Terraform", "bin", configuration, "net10.0");
        if (!File.Exists(Path.Combine(dir, "terraform-provider-kvm")))
            throw new InvalidOperationException($"the provider is not built at {dir}; build the solution first");
        return dir;
    }

    public static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Provider.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Provider.sln not found above " + AppContext.BaseDirectory);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Temp files; best effort.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class TerraformCollection : ICollectionFixture<TerraformFixture>
{
    public const string Name = "real terraform";
}
