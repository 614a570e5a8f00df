// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// STAND-IN, DELETE AT MERGE. The real QemuCommand.Build, MacAddress.Generate and HostProbe.ProbeAsync
// come from the agent-qemu branch. This file only exists so the VM lifecycle can run real QEMU before
// then: no disks, no CD-ROMs, no firmware choice, user-mode NICs only. See Stand-ins.* call sites.
// ─────────────────────────────────────────────────────────────────────────────────────────────────────
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kvm.Agent.Host;
using Kvm.Model;

namespace Kvm.Agent.Qemu;

/// <summary>STAND-IN for <c>QemuCommand.Build</c>: a minimal, pure argv for an effective (defaults applied) spec.</summary>
internal static class QemuCommandStandIn
{
    public static IReadOnlyList<string> Build(VmSpec spec, HostFacts facts, VmPaths paths)
    {
        var cpu = spec.Cpu!;
        var accel = spec.Kvm switch { true => "kvm", false => "tcg", null => facts.DefaultAccelerator };
        var vcpus = cpu.Sockets!.Value * cpu.Cores!.Value * cpu.Threads!.Value;
        var argv = new List<string>
        {
            facts.QemuBinary,
            "-name", $"{spec.Name},debug-threads=on",
            "-nodefaults", "-no-user-config",
            "-display", "none",
            "-machine", $"{spec.Machine},accel={accel}",
            "-smp", $"{vcpus},sockets={cpu.Sockets},cores={cpu.Cores},threads={cpu.Threads}",
            "-m", spec.Memory!.SizeMib!.Value.ToString(CultureInfo.InvariantCulture),
            "-qmp", $"unix:{paths.QmpSocket},server=on,wait=off",
            "-pidfile", paths.PidFile,
            "-chardev", $"file,id=serial0,path={paths.SerialLog}",
            "-serial", "chardev:serial0",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        };
        if (spec.Display is { Vnc: true, Vga: not ("none" or "serial0") })
            argv.AddRange(["-vga", spec.Display.Vga!, "-vnc", "127.0.0.1:0,to=1000"]);
        if (spec.Memory.Balloon is { Enabled: true })
            argv.AddRange(["-device", "virtio-balloon-pci,id=balloon0"]);
        foreach (var (slot, nic) in (spec.NetworkInterfaces ?? []).OrderBy(n => n.Key, StringComparer.Ordinal))
        {
            argv.AddRange(["-netdev", $"user,id={slot}"]);
            argv.AddRange(["-device", $"{NicDevice(nic.Model)},netdev={slot},id={slot},mac={paths.Macs[slot]}"]);
        }
        if (spec.Kernel is not null)
        {
            argv.AddRange(["-kernel", spec.Kernel]);
            if (spec.Initrd is not null) argv.AddRange(["-initrd", spec.Initrd]);
            if (spec.Cmdline is not null) argv.AddRange(["-append", spec.Cmdline]);
        }
        return argv;
    }

    private static string NicDevice(string? model) => model switch
    {
        "e1000" => "e1000",
        "e1000e" => "e1000e",
        "rtl8139" => "rtl8139",
        "vmxnet3" => "vmxnet3",
        _ => "virtio-net-pci",
    };
}

/// <summary>STAND-IN for <c>MacAddress.Generate(vmId, slot)</c>: stable, locally administered, unicast.</summary>
internal static class MacAddressStandIn
{
    public static string Generate(long vmId, string slot)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{vmId}/{slot}"));
        return $"02:{hash[0]:x2}:{hash[1]:x2}:{hash[2]:x2}:{hash[3]:x2}:{hash[4]:x2}";
    }
}

/// <summary>STAND-IN for <c>HostProbe.ProbeAsync</c>: facts from /proc and the accelerator option, no QEMU queries.</summary>
internal static class HostProbeStandIn
{
    public static Task<HostFacts> ProbeAsync(AgentOptions options)
    {
        var kvmPresent = File.Exists("/dev/kvm");
        var memKb = File.ReadLines("/proc/meminfo").Where(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture)).FirstOrDefault();
        return Task.FromResult(new HostFacts
        {
            QemuBinary = "qemu-system-x86_64",
            QemuVersion = new Version(0, 0, 0),
            KvmPresent = kvmPresent,
            KvmUsable = kvmPresent,
            DefaultAccelerator = options.Accel == "auto" ? (kvmPresent ? "kvm" : "tcg") : options.Accel,
            CpuCores = Environment.ProcessorCount,
            MemoryMib = memKb / 1024,
            MachineTypes = ["q35", "pc"],
            CpuModels = ["max", "qemu64", "kvm64", "host"],
            Ovmf = new OvmfFiles(),
        });
    }
}
