namespace Kvm.Pulumi;

internal static class Program
{
    private static int Main() => 0;
}
