using System.Text.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.Tests.Storage;

public sealed class VmStorageTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private StorageHarness _h = null!;

    public async Task InitializeAsync() => _h = await StorageHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private IVmStorage Storage => _h.Get<IVmStorage>();

    private static VmSpec Spec(string json) => JsonSerializer.Deserialize(json, ModelJsonContext.Default.VmSpec)!;

    private async Task<long> VirtualSize(string path)
    {
        var result = await _h.Runner.RunAsync(["qemu-img", "info", "-U", "--output=json", path], TimeSpan.FromSeconds(10));
        return JsonDocument.Parse(result.StdOut).RootElement.GetProperty("virtual-size").GetInt64();
    }

    [Fact]
    public async Task InlineDisksAreCreatedOnceAndGrownWhenLarger()
    {
        var spec = Spec("""{"name":"a","disks":{"scsi0":{"size_gib":1},"virtio0":{"size_gib":1,"format":"raw"}}}""");
        var scsi0 = Path.Combine(_h.DefaultPool, "vm-100-disk-scsi0.qcow2");
        var virtio0 = Path.Combine(_h.DefaultPool, "vm-100-disk-virtio0.raw");

        Assert.Equal([scsi0, virtio0], await Storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None));
        Assert.Empty(await Storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None));

        spec.Disks!["scsi0"].SizeGib = 3;
        Assert.Empty(await Storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None));
        Assert.Equal(3 * GiB, await VirtualSize(scsi0));
        Assert.Equal(GiB, await VirtualSize(virtio0));

        var (disks, cdroms) = await Storage.ResolveAsync(100, spec, CancellationToken.None);
        Assert.Equal(new DiskFile(scsi0, "qcow2"), disks["scsi0"]);
        Assert.Equal(new DiskFile(virtio0, "raw"), disks["virtio0"]);
        Assert.Empty(cdroms);
    }

    [Fact]
    public async Task AnInlineDiskNeverReplacesAnExistingFile()
    {
        var path = Path.Combine(_h.DefaultPool, "vm-100-disk-scsi0.qcow2");
        await _h.Runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", path, "2G");
        await _h.Runner.RunCheckedAsync("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", path);
        var before = await File.ReadAllBytesAsync(path);

        Assert.Empty(await Storage.EnsureInlineDisksAsync(100, Spec("""{"name":"a","disks":{"scsi0":{"size_gib":1}}}"""), CancellationToken.None));

        Assert.Equal(before, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task AFailedEnsureRemovesTheDisksItCreated()
    {
        var small = await _h.Dir.MountTmpfsAsync("small", "8m");
        _h.Get<StoragePools>().Create(new StoragePoolSpec { Name = "small", Path = Path.Combine(small, "pool") });
        var spec = Spec("""{"name":"a","disks":{"scsi0":{"size_gib":1,"pool":"small"},"scsi1":{"size_gib":1,"pool":"small","format":"raw","preallocation":"full"}}}""");

        var e = await Assert.ThrowsAsync<AgentProblemException>(() => Storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None));

        Assert.Equal(ProblemTypes.NoSpace, e.Type);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(small, "pool")));
    }

    [Fact]
    public async Task RemovingInlineDisksKeepsVolumesAndOtherVmsDisks()
    {
        await _h.Get<Volumes>().CreateAsync(new VolumeSpec { Name = "data.qcow2", SizeGib = 1 }, CancellationToken.None);
        var spec = Spec("""{"name":"a","disks":{"scsi0":{"size_gib":1},"scsi1":{"volume_id":"default/data.qcow2"}}}""");
        await Storage.EnsureInlineDisksAsync(100, spec, CancellationToken.None);
        await Storage.EnsureInlineDisksAsync(101, spec, CancellationToken.None);

        await Storage.RemoveInlineDisksAsync(100, spec, CancellationToken.None);
        await Storage.RemoveInlineDisksAsync(100, spec, CancellationToken.None);

        Assert.Equal(["data.qcow2", "vm-101-disk-scsi0.qcow2"], Directory.EnumerateFileSystemEntries(_h.DefaultPool).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task VolumesAndIsosResolveToTheirFilesAndFormats()
    {
        await _h.Get<Volumes>().CreateAsync(new VolumeSpec { Name = "data.img", SizeGib = 1, Format = "raw" }, CancellationToken.None);
        var iso = Path.Combine(_h.DefaultPool, "boot.iso");
        await File.WriteAllBytesAsync(iso, new byte[1 << 20]);
        _h.Usage.Add(100, "scsi1", "default/data.img"); // the VM's own use is no conflict
        _h.Usage.Add(200, "ide2", "default/boot.iso");  // ISOs are shared

        var (disks, cdroms) = await Storage.ResolveAsync(100,
            Spec("""{"name":"a","disks":{"scsi1":{"volume_id":"default/data.img"}},"cdroms":{"ide2":{"volume_id":"default/boot.iso"},"ide0":{}}}"""), CancellationToken.None);

        Assert.Equal(new DiskFile(Path.Combine(_h.DefaultPool, "data.img"), "raw"), disks["scsi1"]);
        Assert.Equal(iso, cdroms["ide2"]);
        Assert.Null(cdroms["ide0"]);
    }

    [Fact]
    public async Task MissingVolumesAreValidationErrorsAtTheirAttributePaths()
    {
        var e = await Assert.ThrowsAsync<AgentProblemException>(() => Storage.ResolveAsync(100,
            Spec("""{"name":"a","disks":{"scsi0":{"volume_id":"default/missing.qcow2"},"virtio0":{"size_gib":1,"pool":"nope"},"scsi1":{"volume_id":"default/vm-7-disk-scsi0.qcow2"}},"cdroms":{"ide2":{"volume_id":"other/x.iso"}}}"""),
            CancellationToken.None));

        Assert.Equal(422, e.Status);
        Assert.Equal(["cdroms[\"ide2\"].volume_id", "disks[\"scsi0\"].volume_id", "disks[\"scsi1\"].volume_id", "disks[\"virtio0\"].pool"],
            e.Errors!.Select(x => x.Attribute).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AVolumeAnotherVmUsesIsAConflict()
    {
        await _h.Get<Volumes>().CreateAsync(new VolumeSpec { Name = "data.qcow2", SizeGib = 1 }, CancellationToken.None);
        _h.Usage.Add(200, "virtio0", "default/data.qcow2");

        var e = await Assert.ThrowsAsync<AgentProblemException>(() => Storage.ResolveAsync(100,
            Spec("""{"name":"a","disks":{"scsi0":{"volume_id":"default/data.qcow2"}}}"""), CancellationToken.None));

        Assert.Equal((409, ProblemTypes.Conflict), (e.Status, e.Type));
        Assert.Contains("200/virtio0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AVolumeLinkThatLeavesThePoolIsRefused()
    {
        var outside = _h.Dir.Sub("secret.img");
        await File.WriteAllBytesAsync(outside, new byte[1 << 20]);
        File.CreateSymbolicLink(Path.Combine(_h.DefaultPool, "link.img"), outside);
        File.CreateSymbolicLink(Path.Combine(_h.DefaultPool, "vm-100-disk-scsi0.qcow2"), outside);

        var e = await Assert.ThrowsAsync<AgentProblemException>(() => Storage.ResolveAsync(100,
            Spec("""{"name":"a","disks":{"scsi1":{"volume_id":"default/link.img"}}}"""), CancellationToken.None));
        Assert.Equal("disks[\"scsi1\"].volume_id", Assert.Single(e.Errors!).Attribute);

        var inline = await Assert.ThrowsAsync<AgentProblemException>(() => Storage.EnsureInlineDisksAsync(100,
            Spec("""{"name":"a","disks":{"scsi0":{"size_gib":4}}}"""), CancellationToken.None));
        Assert.Equal("disks[\"scsi0\"]", Assert.Single(inline.Errors!).Attribute);
        Assert.Equal(1 << 20, new FileInfo(outside).Length);
    }

    private HostFacts Facts(string? vars4M = null, string? enrolled = null, string? vars2M = null) => new()
    {
        QemuBinary = "qemu-system-x86_64",
        QemuVersion = new Version(7, 2, 0),
        KvmPresent = false,
        KvmUsable = false,
        DefaultAccelerator = "tcg",
        CpuCores = 2,
        MemoryMib = 4096,
        MachineTypes = ["q35"],
        CpuModels = ["max"],
        Ovmf = new OvmfFiles { Vars4M = vars4M, Vars4MEnrolled = enrolled, Vars2M = vars2M },
    };

    private async Task<HostFacts> TemplatesAsync()
    {
        var dir = _h.Dir.Sub("ovmf");
        Directory.CreateDirectory(dir);
        foreach (var (name, fill) in new[] { ("VARS_4M.fd", (byte)4), ("VARS.fd", (byte)2) })
            await File.WriteAllBytesAsync(Path.Combine(dir, name), Enumerable.Repeat(fill, name.Contains("4M", StringComparison.Ordinal) ? 540_672 : 131_072).ToArray());
        // The enrolled template is parsed (the agent adds Microsoft's 2023 certificates to it): the host's real one.
        File.Copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", Path.Combine(dir, "VARS_4M.ms.fd"));
        return Facts(Path.Combine(dir, "VARS_4M.fd"), Path.Combine(dir, "VARS_4M.ms.fd"), Path.Combine(dir, "VARS.fd"));
    }

    [Theory]
    [InlineData("""{"type":"uefi"}""", "VARS_4M.fd")]
    [InlineData("""{"type":"uefi","secure_boot":true}""", "VARS_4M.ms.fd")]
    [InlineData("""{"type":"uefi","secure_boot":true,"efi_vars":{"pre_enrolled_keys":false}}""", "VARS_4M.fd")]
    [InlineData("""{"type":"uefi","efi_vars":{"pre_enrolled_keys":true}}""", "VARS_4M.ms.fd")]
    [InlineData("""{"type":"uefi","efi_vars":{"template":"2m"}}""", "VARS.fd")]
    public async Task EfiVarsAreCopiedFromTheTemplateTheSpecAsksFor(string firmware, string template)
    {
        var facts = await TemplatesAsync();
        var path = _h.Dir.Sub("vms", "100", "efivars.fd");

        Assert.True(await Storage.EnsureEfiVarsAsync(Spec($$"""{"name":"a","firmware":{{firmware}}}"""), facts, path, CancellationToken.None));

        var source = await File.ReadAllBytesAsync(_h.Dir.Sub("ovmf", template));
        Assert.Equal(template == "VARS_4M.ms.fd" ? Kvm.Agent.Firmware.MicrosoftKeys.Add2023Certificates(source) : source, await File.ReadAllBytesAsync(path));
        Assert.Equal(["efivars.fd"], Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public async Task AnExistingEfiVarsStoreIsKept()
    {
        var facts = await TemplatesAsync();
        var path = _h.Dir.Sub("efivars.fd");
        await File.WriteAllTextAsync(path, "the guest's own variables");

        Assert.False(await Storage.EnsureEfiVarsAsync(Spec("""{"name":"a","firmware":{"type":"uefi","secure_boot":true}}"""), facts, path, CancellationToken.None));

        Assert.Equal("the guest's own variables", await File.ReadAllTextAsync(path));
    }

    [Fact]
    public async Task BiosVmsGetNoEfiVars()
    {
        var path = _h.Dir.Sub("efivars.fd");

        Assert.False(await Storage.EnsureEfiVarsAsync(Spec("""{"name":"a"}"""), await TemplatesAsync(), path, CancellationToken.None));

        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData("""{"type":"uefi","efi_vars":{"template":"2m","pre_enrolled_keys":true}}""", "firmware.efi_vars.pre_enrolled_keys")]
    [InlineData("""{"type":"uefi","secure_boot":true}""", "firmware.efi_vars.template")]
    public async Task AMissingTemplateIsAValidationError(string firmware, string attribute)
    {
        var facts = Facts(vars4M: "/nonexistent/VARS_4M.fd");
        var path = _h.Dir.Sub("efivars.fd");

        var e = await Assert.ThrowsAsync<AgentProblemException>(() =>
            Storage.EnsureEfiVarsAsync(Spec($$"""{"name":"a","firmware":{{firmware}}}"""), facts, path, CancellationToken.None));

        Assert.Equal(attribute, Assert.Single(e.Errors!).Attribute);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task AnEfiVarsCopyOnAFullDiskFailsWithNoSpaceAndLeavesNoFile()
    {
        var facts = await TemplatesAsync();
        var small = await _h.Dir.MountTmpfsAsync("small", "8m");
        TempDir.Fill(small);
        var path = Path.Combine(small, "efivars.fd");

        var e = await Assert.ThrowsAsync<AgentProblemException>(() =>
            Storage.EnsureEfiVarsAsync(Spec("""{"name":"a","firmware":{"type":"uefi"}}"""), facts, path, CancellationToken.None));

        Assert.Equal((507, ProblemTypes.NoSpace), (e.Status, e.Type));
        Assert.Equal(["filler"], Directory.EnumerateFileSystemEntries(small).Select(Path.GetFileName));
    }
}
