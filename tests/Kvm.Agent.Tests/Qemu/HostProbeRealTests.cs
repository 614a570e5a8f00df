using Kvm.Agent.Host;
using Xunit.Abstractions;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>The probe against this machine's real QEMU.</summary>
public sealed class HostProbeRealTests(ITestOutputHelper output)
{
    [RealQemuFact]
    public async Task Probes_the_real_host()
    {
        var facts = await HostProbe.ProbeAsync(new TestCommandRunner(), RealQemu.System!, "auto", log: output.WriteLine);
        output.WriteLine($"QEMU {facts.QemuVersion}, kvm present {facts.KvmPresent}, usable {facts.KvmUsable}, default {facts.DefaultAccelerator}, {facts.CpuCores} CPUs, {facts.MemoryMib} MiB");
        Assert.True(facts.QemuVersion >= new Version(7, 0));
        Assert.Contains("q35", facts.MachineTypes);
        Assert.Contains("max", facts.CpuModels);
        Assert.True(facts.CpuCores >= 1);
        Assert.True(facts.MemoryMib > 0);
        Assert.Equal(facts.KvmPresent && facts.KvmUsable ? "kvm" : "tcg", facts.DefaultAccelerator);
        if (!facts.KvmPresent)
            Assert.False(facts.KvmUsable);
    }

    [RealQemuFact]
    public async Task The_kvm_probe_finishes_within_its_time_limit()
    {
        if (!File.Exists("/dev/kvm"))
            return; // nothing to probe: ProbeAsync reports KvmPresent = false without running QEMU (covered above)
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await HostProbe.ProbeKvmAsync(new TestCommandRunner(), RealQemu.System!);
        output.WriteLine($"{result.Usable}: {result.Detail}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"probe took {clock.Elapsed}");
        Assert.False(string.IsNullOrEmpty(result.Detail));
    }

    [RealQemuFact]
    public void The_probe_firmware_runs_to_its_exit_marker_under_TCG()
    {
        var image = Path.Join(Directory.CreateTempSubdirectory("kq-").FullName, "probe.bin");
        try
        {
            File.WriteAllBytes(image, HostProbe.KvmProbeFirmware());
            var argv = HostProbe.KvmProbeArgv(RealQemu.System!, image).Select(a => a == "pc,accel=kvm" ? "pc,accel=tcg" : a).ToList();
            var result = RealQemu.Run(argv, TimeSpan.FromSeconds(20));
            Assert.Equal(HostProbe.KvmProbeExitCode, result.ExitCode);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(image)!, recursive: true);
        }
    }
}
