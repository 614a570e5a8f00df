namespace Kvm.Protocol.Tests;

/// <summary>
/// The test assembly doubles as a tiny plugin executable, so the end-to-end tests exercise
/// the real process behaviour (stdout, signals, exit) without building another project.
/// </summary>
public static class Program
{
    public static Task<int> Main(string[] args) => args.FirstOrDefault() switch
    {
        "goplugin" => PluginFixtures.RunGoPluginAsync(),
        "pulumi" => PluginFixtures.RunPulumiAsync(args[1..]),
        _ => Task.FromResult(2),
    };
}
