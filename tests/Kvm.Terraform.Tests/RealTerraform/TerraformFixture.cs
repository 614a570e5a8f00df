using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>The result of one terraform command.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;
}

/// <summary>
/// The real terraform offline against the provider built with this test run (<see cref="OfflineTerraform"/>, one
/// filesystem_mirror per run), in fresh work directories.
/// </summary>
public sealed class TerraformFixture : IDisposable
{
    private readonly OfflineTerraform _terraform = new(FindRepoRoot());

    public string RepoRoot => _terraform.RepoRoot;

    public string Root => _terraform.Root;

    public string CliConfigPath => _terraform.CliConfigPath;

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
        var (code, stdout, stderr) = _terraform.Run(workDirectory, environment, args);
        return new CommandResult(code, stdout, stderr);
    }

    public CommandResult Run(string workDirectory, params string[] args) => Run(workDirectory, null, args);

    /// <summary>terraform init, which must succeed offline.</summary>
    public void Init(string workDirectory)
    {
        var init = Run(workDirectory, "init", "-input=false", "-no-color");
        Assert.True(init.ExitCode == 0, init.Output);
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

    public void Dispose() => _terraform.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TerraformCollection : ICollectionFixture<TerraformFixture>
{
    public const string Name = "real terraform";
}
