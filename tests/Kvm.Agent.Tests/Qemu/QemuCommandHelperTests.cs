using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Tests.Qemu;

public sealed class QemuCommandHelperTests
{
    [Fact]
    public void Post_start_commands_pull_cables_and_set_the_balloon_target()
    {
        var input = GoldenCase.Load("nic-mac-and-link-down");
        var spec = input.Spec;
        spec.Memory = new MemorySpec { SizeMib = 2048, Balloon = new BalloonSpec { MinMib = 1024 } };
        var commands = QemuCommand.PostStartCommands(spec);
        Assert.Collection(commands,
            c => { Assert.Equal("set_link", c.Execute); Assert.Equal("net0", c.Arguments["name"]); Assert.Equal(false, c.Arguments["up"]); },
            c => { Assert.Equal("balloon", c.Execute); Assert.Equal(1024L * 1024 * 1024, c.Arguments["value"]); });
    }

    [Fact]
    public void Post_start_commands_are_empty_for_a_default_vm() =>
        Assert.Empty(QemuCommand.PostStartCommands(GoldenCase.Load("minimal").Spec));

    [Theory]
    [InlineData("minimal", null)]
    [InlineData("uefi-4m", "/usr/share/OVMF/OVMF_VARS_4M.fd")]
    [InlineData("uefi-2m", "/usr/share/OVMF/OVMF_VARS.fd")]
    [InlineData("uefi-secure-boot", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd")]
    public void Efi_vars_template_follows_size_and_keys(string name, string? expected)
    {
        var input = GoldenCase.Load(name);
        Assert.Equal(expected, QemuCommand.EfiVarsTemplate(input.Spec, input.Facts));
    }

    [Fact]
    public void Efi_vars_template_refuses_enrolled_keys_on_2m()
    {
        var spec = new VmSpec { Name = "x", Firmware = new FirmwareSpec { Type = "uefi", EfiVars = new EfiVarsSpec { Template = "2m", PreEnrolledKeys = true } } };
        var e = Assert.Throws<QemuBuildException>(() => QemuCommand.EfiVarsTemplate(spec, GoldenCase.DefaultFacts));
        Assert.Equal("firmware.efi_vars.pre_enrolled_keys", e.Errors[0].Attribute);
    }

    [Fact]
    public void Slots_sort_by_bus_then_number() =>
        Assert.Equal(["ide2", "sata0", "scsi2", "scsi10", "virtio0"],
            new[] { "scsi10", "virtio0", "scsi2", "sata0", "ide2" }.Order(QemuCommand.SlotComparer));

    [Fact]
    public void Proxmox_levels_build_on_each_other()
    {
        var levels = ProxmoxCpuModels.All;
        Assert.Equal(["x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4"], levels.Select(l => l.Name));
        for (var i = 1; i < levels.Count; i++)
            Assert.Empty(levels[i - 1].Flags.Except(levels[i].Flags));
        Assert.All(levels, l => Assert.Equal("qemu64", l.BaseModel));
    }

    [Fact]
    public void The_builder_does_not_change_its_input()
    {
        var input = GoldenCase.Load("full-featured");
        var before = System.Text.Json.JsonSerializer.Serialize(input.Spec, ModelJson.Options);
        QemuCommand.Build(input.Spec, input.Facts, input.Paths);
        Assert.Equal(before, System.Text.Json.JsonSerializer.Serialize(input.Spec, ModelJson.Options));
    }
}
