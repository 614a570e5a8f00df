namespace Kvm.Pulumi.Tests;

/// <summary>Paths inside the repository the tests run from.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Set to regenerate committed files (schema.json) instead of comparing with them.</summary>
    public static bool Regenerate => Environment.GetEnvironmentVariable("KVM_REGENERATE") == "1";

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Provider.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Provider.sln not found above " + AppContext.BaseDirectory);
    }
}
