namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>
    /// The argv of a migration target: the VM's own argv plus <c>-S -incoming defer</c>: QEMU starts paused, waits
    /// until QMP <c>migrate-incoming</c> names where the source's state arrives (after the disks are exported), and stays paused after it arrived until the agent says <c>cont</c> (the disk exports must be gone first).
    /// </summary>
    public static IReadOnlyList<string> WithIncoming(IReadOnlyList<string> argv)
    {
        ArgumentNullException.ThrowIfNull(argv);
        return [.. argv, "-S", "-incoming", "defer"];
    }
}
