using Kvm.Model;

namespace Kvm.Agent.Tests.Support;

/// <summary>Small VM specs for tests: no disks (storage is another feature), little memory, user-mode NICs at most.</summary>
public static class Specs
{
    private static int _counter;

    public static string UniqueName(string prefix = "vm") => $"{prefix}-{Interlocked.Increment(ref _counter)}-{Environment.ProcessId}";

    /// <summary>A VM that is defined but not started.</summary>
    public static VmSpec Stopped(string? name = null) => new()
    {
        Name = name ?? UniqueName(),
        PowerState = "stopped",
        Memory = new MemorySpec { SizeMib = 64 },
    };

    /// <summary>A VM that starts (TCG, no boot device, no display).</summary>
    public static VmSpec Running(string? name = null) => new()
    {
        Name = name ?? UniqueName(),
        Memory = new MemorySpec { SizeMib = 64 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
    };
}
