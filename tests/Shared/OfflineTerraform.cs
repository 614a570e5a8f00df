using System.Diagnostics;

namespace Kvm.Tests.Shared;

/// <summary>
/// The real terraform, offline: the terraform-provider-kvm of this build installed into a
/// filesystem_mirror in a temporary directory, and terraform run against it with a CLI config that
/// names only that mirror. For test projects other than Kvm.Terraform.Tests (whose fixture does the
/// same) that need terraform next to something else.
/// </summary>
public sealed class OfflineTerraform : IDisposable
{
    public const string Version = "0.1.0";

    public OfflineTerraform(string repoRoot)
    {
        RepoRoot = repoRoot;
        Root = Directory.CreateTempSubdirectory("kvm-tfx-").FullName;
        var mirror = Path.Combine(Root, "mirror");
        var package = Path.Combine(mirror, "registry.terraform.io", "kvm", "kvm", Version, "linux_amd64");
        Directory.CreateDirectory(package);
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var build = Path.Combine(repoRoot, "provider", "Kvm.Terraform", "bin", configuration, "net10.0");
        if (!File.Exists(Path.Combine(build, "terraform-provider-kvm")))
            throw new InvalidOperationException($"terraform-provider-kvm is not built at {build}; build the solution first");
        foreach (var file in Directory.EnumerateFiles(build))
            File.Copy(file, Path.Combine(package, Path.GetFileName(file)));
        CliConfigPath = Path.Combine(Root, "terraformrc");
        File.WriteAllText(CliConfigPath, $$"""
            provider_installation {
              filesystem_mirror {
                path    = "{{mirror}}"
                include = ["registry.terraform.io/kvm/kvm"]
              }
            }
            """);
    }

    public string RepoRoot { get; }

    public string Root { get; }

    public string CliConfigPath { get; }

    /// <summary>Runs terraform in <paramref name="workDirectory"/>; returns exit code and output.</summary>
    public (int ExitCode, string Output) Run(string workDirectory, params string[] args)
    {
        var (code, stdout, stderr) = Run(workDirectory, null, args);
        return (code, stdout + stderr);
    }

    /// <summary>
    /// Runs terraform offline with only <paramref name="environment"/> of the caller's KVM_* and TF_LOG settings
    /// (a test never talks to an agent it did not name); bounded at 10 minutes.
    /// </summary>
    public (int ExitCode, string Stdout, string Stderr) Run(string workDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
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
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs terraform and throws with its output unless it exits with <paramref name="expected"/>.</summary>
    public string RunChecked(string workDirectory, int expected, params string[] args)
    {
        var (code, output) = Run(workDirectory, args);
        return code == expected ? output
            : throw new InvalidOperationException($"terraform {string.Join(' ', args)} exited with {code}, not {expected}:\n{output}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Temporary files; best effort.
        }
    }
}
