using Kvm.Agent.Host;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>The probe's parsers, over output captured from this project's QEMU 7.2 host (HostData/).</summary>
public sealed class HostProbeTests
{
    private static string Data(string name) => File.ReadAllText(Path.Join(GoldenCase.HostDataDirectory, name));

    [Fact]
    public void Parses_the_QEMU_version() => Assert.Equal(new Version(7, 2, 22), HostProbe.ParseVersion(Data("qemu-version.txt")));

    [Theory]
    [InlineData("QEMU emulator version 8.0.0\n", "8.0.0")]
    [InlineData("QEMU emulator version 9.1.2 (v9.1.2)\nCopyright", "9.1.2")]
    [InlineData("QEMU emulator version 6.2\n", "6.2.0")]
    public void Parses_other_version_lines(string output, string expected) => Assert.Equal(Version.Parse(expected), HostProbe.ParseVersion(output));

    [Fact]
    public void Rejects_output_without_a_version() => Assert.Throws<FormatException>(() => HostProbe.ParseVersion("qemu: command not found"));

    [Fact]
    public void Parses_machine_types_with_aliases()
    {
        var machines = HostProbe.ParseMachineTypes(Data("machine-help.txt"));
        Assert.Contains("q35", machines);
        Assert.Contains("pc", machines);
        Assert.Contains("pc-q35-7.2", machines);
        Assert.Contains("pc-i440fx-7.2", machines);
        Assert.Contains("pc-q35-4.0.1", machines);
        Assert.DoesNotContain("Supported", machines);
        Assert.All(machines, m => Assert.DoesNotContain(" ", m, StringComparison.Ordinal));
    }

    [Fact]
    public void Parses_cpu_models_but_not_the_flag_list()
    {
        var models = HostProbe.ParseCpuModels(Data("cpu-help.txt"));
        foreach (var m in new[] { "host", "max", "kvm64", "qemu64", "EPYC-Rome", "Skylake-Server-v4", "486" })
            Assert.Contains(m, models);
        Assert.DoesNotContain("aes", models);
        Assert.DoesNotContain("3dnow", models);
        Assert.True(models.Count > 100);
    }

    [Fact]
    public void Parses_memory_and_cpus()
    {
        Assert.Equal(24684084L / 1024, HostProbe.ParseMemTotalMib(Data("meminfo.txt")));
        Assert.Equal(2, HostProbe.ParseCpuCount(Data("cpuinfo.txt")));
        Assert.Equal(0, HostProbe.ParseMemTotalMib("garbage"));
    }

    [Fact]
    public void Finds_the_Debian_OVMF_files_that_exist()
    {
        var present = new HashSet<string> { "/fw/OVMF_CODE_4M.fd", "/fw/OVMF_VARS_4M.fd", "/fw/OVMF_VARS_4M.ms.fd" };
        var ovmf = HostProbe.FindOvmf("/fw", present.Contains);
        Assert.Equal("/fw/OVMF_CODE_4M.fd", ovmf.Code4M);
        Assert.Equal("/fw/OVMF_VARS_4M.ms.fd", ovmf.Vars4MEnrolled);
        Assert.Null(ovmf.Code4MSecure);
        Assert.Null(ovmf.Code2M);
    }

    [Theory]
    [InlineData("auto", true, true, "kvm")]
    [InlineData("auto", true, false, "tcg")]
    [InlineData("auto", false, false, "tcg")]
    [InlineData("tcg", true, true, "tcg")]
    [InlineData("kvm", true, false, "kvm")]
    public void Chooses_the_default_accelerator(string option, bool present, bool usable, string expected) =>
        Assert.Equal(expected, HostProbe.ChooseAccelerator(option, present, usable));

    [Fact]
    public void Refuses_kvm_when_there_is_no_kvm() =>
        Assert.Throws<InvalidOperationException>(() => HostProbe.ChooseAccelerator("kvm", false, false));

    [Fact]
    public void Classifies_kvm_probe_outcomes()
    {
        var budget = TimeSpan.FromSeconds(1);
        Assert.True(HostProbe.ClassifyKvmProbe(new CommandResult(85, "", ""), TimeSpan.FromMilliseconds(90), budget).Usable);
        var slow = HostProbe.ClassifyKvmProbe(new CommandResult(85, "", ""), TimeSpan.FromMilliseconds(1500), budget);
        Assert.False(slow.Usable);
        Assert.Contains("too slow", slow.Detail, StringComparison.Ordinal);
        var pvm = HostProbe.ClassifyKvmProbe(new CommandResult(-15, "", Data("kvm-probe-stderr.txt")), TimeSpan.FromSeconds(2), budget);
        Assert.False(pvm.Usable);
        Assert.Contains("emulation failure", pvm.Detail, StringComparison.Ordinal);
        Assert.Contains("did not finish", HostProbe.ClassifyKvmProbe(null, TimeSpan.FromSeconds(2), budget).Detail, StringComparison.Ordinal);
        var failed = HostProbe.ClassifyKvmProbe(new CommandResult(1, "", "qemu-system-x86_64: warning: x\nqemu-system-x86_64: failed to initialize kvm: Permission denied\n"), TimeSpan.FromMilliseconds(50), budget);
        Assert.Equal("QEMU exited with status 1: qemu-system-x86_64: failed to initialize kvm: Permission denied", failed.Detail);
    }

    [Fact]
    public void The_probe_firmware_is_a_64_KiB_image_with_a_reset_vector()
    {
        var image = HostProbe.KvmProbeFirmware();
        Assert.Equal(65536, image.Length);
        Assert.Equal(0xEA, image[0xFFF0]);
        Assert.Equal([0x9B, 0xDB, 0xE3], image[..3]);
    }
}
