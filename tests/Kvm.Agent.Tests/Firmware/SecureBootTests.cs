using System.Globalization;
using Kvm.Agent.Firmware;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Firmware;

/// <summary>
/// Secure Boot end to end under TCG: the agent makes the VM's efidisk, the test reads the enrolled keys back from that
/// file, and OVMF's secure-boot build boots the (signed) Debian test kernel from it, which reports on the serial console
/// whether UEFI Secure Boot is on.
/// </summary>
[Collection("qemu")]
public sealed class SecureBootTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private static VmSpec Uefi(bool secureBoot, bool? preEnrolledKeys = null) => new()
    {
        Name = Specs.UniqueName("sb"),
        Memory = new MemorySpec { SizeMib = 256 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Firmware = new FirmwareSpec { Type = "uefi", SecureBoot = secureBoot, EfiVars = preEnrolledKeys is null ? null : new EfiVarsSpec { PreEnrolledKeys = preEnrolledKeys } },
        Kernel = TestGuest.Kernel,
        Initrd = TestGuest.Initrd,
        Cmdline = "console=ttyS0 panic=-1 kvmtest=poweroff",
    };

    private string EfiDisk(long id) => Path.Combine(_agent.DataDir, "vms", id.ToString(CultureInfo.InvariantCulture) + ".efivars.fd");

    private async Task<string> BootAsync(Vm vm)
    {
        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(120), "the guest's serial output");
        await Eventually.TrueAsync(async () => (await _agent.Client.GetVmAsync(vm.VmId!.Value)).Value.Status == "stopped", TimeSpan.FromSeconds(30), "the guest powered off");
        return await File.ReadAllTextAsync(vm.SerialLog!);
    }

    [Fact]
    public async Task ASecureBootVmsEfidiskHasMicrosofts2011And2023KeysAndTheGuestBootsWithSecureBootOn()
    {
        var vm = (await _agent.Client.CreateVmAsync(Uefi(secureBoot: true))).Value;
        var id = vm.VmId!.Value;

        // Read back from the VM's own variable store, as QEMU uses it.
        var state = EfiVarStore.Parse(await File.ReadAllBytesAsync(EfiDisk(id))).SecureBoot();
        Assert.True(state.SecureBootEnable);
        Assert.NotEmpty(state.PlatformKeys);
        var kek = state.KeyExchangeKeys.Select(s => s.CommonName).ToList();
        var db = state.Db.Select(s => s.CommonName).ToList();
        Assert.Contains("Microsoft Corporation KEK CA 2011", kek);
        Assert.Contains("Microsoft Corporation KEK 2K CA 2023", kek);
        foreach (var name in new[] { "Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011", "Windows UEFI CA 2023", "Microsoft UEFI CA 2023", "Microsoft Option ROM UEFI CA 2023" })
            Assert.Contains(name, db);

        var serial = await BootAsync(vm);
        Assert.Contains("secureboot: Secure boot enabled", serial, StringComparison.Ordinal);

        // The firmware wrote to the store (boot entries, counters) and it still parses, keys intact.
        var after = EfiVarStore.Parse(await File.ReadAllBytesAsync(EfiDisk(id))).SecureBoot();
        Assert.Equal(state.Db.Count, after.Db.Count);
        Assert.True(after.Enforcing);

        await _agent.Client.DeleteVmAsync(id);
        Assert.False(File.Exists(EfiDisk(id)));
    }

    [Fact]
    public async Task WithoutPreEnrolledKeysTheSameFirmwareBootsWithSecureBootOff()
    {
        var vm = (await _agent.Client.CreateVmAsync(Uefi(secureBoot: true, preEnrolledKeys: false))).Value;
        var state = EfiVarStore.Parse(await File.ReadAllBytesAsync(EfiDisk(vm.VmId!.Value))).SecureBoot();
        Assert.False(state.Enforcing);
        Assert.Empty(state.PlatformKeys);

        var serial = await BootAsync(vm);
        Assert.Contains("secureboot: Secure boot disabled", serial, StringComparison.Ordinal);
        await _agent.Client.DeleteVmAsync(vm.VmId!.Value);
    }
}
