using Kvm.Tests.Shared;

namespace Kvm.Agent.Tests.GuestAgent;

/// <summary>The real Debian test guest (<see cref="DebianGuestFiles"/>), found from this test assembly's repository.</summary>
public static class DebianGuest
{
    private static DebianGuestFiles Files => DebianGuestFiles.Find(RepoRoot);

    public static string Disk => Files.Disk;
    public static string Kernel => Files.Kernel;
    public static string Initrd => Files.Initrd;
    public static string Cmdline => Files.Cmdline;

    /// <summary>The repository root (where Provider.sln is).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Provider.sln")))
                    return dir.FullName;
            throw new InvalidOperationException("Provider.sln not found above " + AppContext.BaseDirectory);
        }
    }
}
