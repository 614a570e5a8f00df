using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Vms;

/// <summary>
/// Templates and clones through the real agent, qemu-img and QEMU: a VM converted into a template is never started and keeps its
/// disks; linked clones are overlays on them (proved with qemu-img's backing file and the content read through the overlay), full
/// clones independent copies; a template with linked clones cannot be deleted; a clone's settings are its own.
/// </summary>
[Collection("qemu")]
public sealed class TemplateCloneTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private string Disk(long vmId, string slot = "scsi0") => Path.Combine(_agent.DataDir, "pools", "default", $"vm-{vmId}-disk-{slot}.qcow2");

    private static Task<CommandResult> RunAsync(params string[] argv) => new CommandRunner().RunAsync(argv, TimeSpan.FromSeconds(60));

    private static async Task<bool> HoldsAsync(string image, byte pattern) =>
        (await RunAsync("qemu-io", "-U", "-r", "-f", "qcow2", "-c", $"read -P 0x{pattern:x2} 0 4k", image)).Ok;

    private static VmSpec Base(string name, long memory = 64) => new()
    {
        Name = Specs.UniqueName(name),
        Memory = new MemorySpec { SizeMib = memory },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 } },
    };

    [Fact]
    public async Task ATemplateIsNeverStartedItsLinkedClonesAreOverlaysAndItOutlivesThemOnly()
    {
        // A stopped VM with content, converted in place into a template.
        var source = Base("tpl");
        source.PowerState = "stopped";
        var template = (await Client.CreateVmAsync(source)).Value;
        var tid = template.VmId!.Value;
        Assert.True((await RunAsync("qemu-io", "-f", "qcow2", "-c", "write -P 0x54 0 4k", Disk(tid))).Ok);
        var spec = template.ToSpec();
        spec.Template = true;
        spec.PowerState = null;
        await Client.UpdateVmAsync(tid, spec);
        Assert.True((await Client.GetVmAsync(tid)).Value.Template);

        // Never started, never converted back, no snapshots, disks fixed.
        var start = await Assert.ThrowsAsync<KvmApiException>(() => Client.StartVmAsync(tid));
        Assert.Equal(HttpStatusCode.Conflict, start.Status);
        Assert.Contains("template", start.Detail, StringComparison.Ordinal);
        var back = (await Client.GetVmAsync(tid)).Value.ToSpec();
        back.Template = false;
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => Client.UpdateVmAsync(tid, back));
        Assert.Contains("template", refused.ErrorsByAttribute.Keys);
        var grow = (await Client.GetVmAsync(tid)).Value.ToSpec();
        grow.Disks!["scsi0"].SizeGib = 2;
        Assert.Contains("disks", (await Assert.ThrowsAsync<KvmApiException>(() => Client.UpdateVmAsync(tid, grow))).ErrorsByAttribute.Keys);
        Assert.Equal(HttpStatusCode.Conflict, (await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateSnapshotAsync(tid, new SnapshotSpec { Name = "s1" }))).Status);

        // Linked clone (the default for a template): its own settings, a qcow2 overlay on the template's disk, and it runs.
        var linkedSpec = Base("lnk", memory: 96);
        linkedSpec.Clone = new CloneSpec { SourceVmId = tid };
        var linked = (await Client.CreateVmAsync(linkedSpec)).Value;
        var lid = linked.VmId!.Value;
        Assert.Equal("running", linked.Status);
        Assert.Equal(96, linked.Memory!.SizeMib);
        var info = await RunAsync("qemu-img", "info", "-U", "--output=json", "-f", "qcow2", Disk(lid));
        Assert.Contains(Disk(tid), info.StdOut, StringComparison.Ordinal);
        Assert.True(await HoldsAsync(Disk(lid), 0x54), "the template's content reads through the overlay");

        // Full clone, a bigger disk: independent (no backing file), same content.
        var fullSpec = Base("full");
        fullSpec.PowerState = "stopped";
        fullSpec.Disks!["scsi0"].SizeGib = 2;
        fullSpec.Clone = new CloneSpec { SourceVmId = tid, Linked = false };
        var full = (await Client.CreateVmAsync(fullSpec)).Value;
        var fid = full.VmId!.Value;
        var fullInfo = (await RunAsync("qemu-img", "info", "-U", "--output=json", "-f", "qcow2", Disk(fid))).StdOut;
        Assert.DoesNotContain("backing-filename", fullInfo, StringComparison.Ordinal);
        Assert.Contains("\"virtual-size\": 2147483648", fullInfo, StringComparison.Ordinal);
        Assert.True(await HoldsAsync(Disk(fid), 0x54));

        // A linked clone's disk is a qcow2 overlay: a raw one is refused at its attribute.
        var small = Base("small");
        small.PowerState = "stopped";
        small.Disks!["scsi0"].SizeGib = 1;
        small.Disks["scsi0"].Format = "raw";
        small.Clone = new CloneSpec { SourceVmId = tid };
        Assert.Contains("disks[\"scsi0\"].format", (await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(small))).ErrorsByAttribute.Keys);

        // The template cannot go while a linked clone exists; the full clone does not hold it.
        var busy = await Assert.ThrowsAsync<KvmApiException>(() => Client.DeleteVmAsync(tid));
        Assert.Equal(HttpStatusCode.Conflict, busy.Status);
        Assert.Contains(lid.ToString(System.Globalization.CultureInfo.InvariantCulture), busy.Detail, StringComparison.Ordinal);
        Assert.True(File.Exists(Disk(tid)));
        await Client.DeleteVmAsync(lid, RunningVmDeletion.Force);
        await Client.DeleteVmAsync(tid);
        Assert.False(File.Exists(Disk(tid)));
        Assert.True(await HoldsAsync(Disk(fid), 0x54), "the full clone does not depend on the template");
        await Client.DeleteVmAsync(fid);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "pools", "default")));
    }

    [Fact]
    public async Task AVmThatIsNotATemplateIsOnlyFullClonedAndOnlyWhileStopped()
    {
        var source = (await Client.CreateVmAsync(Base("src"))).Value;
        var sid = source.VmId!.Value;
        Assert.Equal("running", source.Status);

        var linked = Base("lnk2");
        linked.Clone = new CloneSpec { SourceVmId = sid, Linked = true };
        Assert.Contains("clone.linked", (await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(linked))).ErrorsByAttribute.Keys);

        var whileRunning = Base("full2");
        whileRunning.Clone = new CloneSpec { SourceVmId = sid };
        var running = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(whileRunning));
        Assert.Equal(HttpStatusCode.Conflict, running.Status);
        Assert.Contains("stop it first", running.Detail, StringComparison.Ordinal);
        var missing = Base("nosrc");
        missing.Clone = new CloneSpec { SourceVmId = 999_999 };
        Assert.Contains("clone.source_vm_id", (await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(missing))).ErrorsByAttribute.Keys);
        Assert.Single(await Client.ListVmsAsync()); // the refused creates left nothing

        await Client.StopVmAsync(sid);
        var copy = (await Client.CreateVmAsync(whileRunning)).Value;
        Assert.Equal("running", copy.Status);
        Assert.False(copy.Clone!.Linked ?? false);
        // Not linked: the source can go first.
        await Client.DeleteVmAsync(sid);
        await Client.DeleteVmAsync(copy.VmId!.Value, RunningVmDeletion.Force);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "pools", "default")));
    }
}
