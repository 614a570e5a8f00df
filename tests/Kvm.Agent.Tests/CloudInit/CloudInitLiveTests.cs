using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Client;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.CloudInit;

/// <summary>
/// Real QEMU (TCG) through a real agent: the seed drive is attached at start, a cloud_init change swaps the medium
/// of the running VM (same PID, QMP query-block names the new ISO, QEMU holds only the new file), secrets never come
/// back in clear, and delete leaves no seed.
/// </summary>
[Collection("qemu")]
public sealed class CloudInitLiveTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private string SeedDir => Path.Combine(_agent.DataDir, "cloud-init");

    private static VmSpec WithCloudInit(VmSpec spec, string userData, string onChange = "none")
    {
        spec.CloudInit = new CloudInitSpec
        {
            Hostname = "seeded",
            User = new CloudInitUserSpec { Name = "ops", Password = "hunter2", SshKeys = ["ssh-ed25519 AAAAC3Nza test@kvm"] },
            UserData = userData,
            OnChange = onChange,
        };
        return spec;
    }

    /// <summary>The file in the seed drive, from QMP query-block over the agent's own monitor (one QMP client per socket).</summary>
    private async Task<string?> SeedInDriveAsync(long vmId, string slot)
    {
        var monitor = _agent.Host.Services.GetRequiredService<VmRuntime>().MonitorOf(vmId)!;
        var blocks = (JsonArray)(await monitor.ExecuteAsync("query-block"))!;
        var drive = blocks.OfType<JsonObject>().Single(b => b["qdev"]?.GetValue<string>() == slot || b["device"]?.GetValue<string>() == slot);
        return drive["inserted"]?["file"]?.GetValue<string>();
    }

    private static List<string> OpenFiles(int pid) =>
        [.. Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Select(fd => { try { return new FileInfo(fd).LinkTarget ?? ""; } catch (IOException) { return ""; } })];

    [Fact]
    public async Task ASeedChangeIsSwappedIntoTheRunningVmWhichKeepsItsProcess()
    {
        var created = (await Client.CreateVmAsync(WithCloudInit(Specs.Running(), "#cloud-config\nruncmd: [echo one]\n"))).Value;
        var id = created.VmId!.Value;
        var pid = (int)created.Pid!.Value;
        Assert.Equal("running", created.Status);

        // Secrets come back as fingerprints, never in clear; everything else as set.
        Assert.Equal(Secrets.Fingerprint("cloud_init.user.password", "hunter2"), created.CloudInit!.User!.Password);
        Assert.Equal(Secrets.Fingerprint("cloud_init.user_data", "#cloud-config\nruncmd: [echo one]\n"), created.CloudInit.UserData);
        Assert.Equal("ops", created.CloudInit.User.Name);
        var firstId = created.CloudInitInstanceId;
        Assert.Matches("^iid-[0-9a-f]{16}$", firstId);

        var firstIso = await SeedInDriveAsync(id, "scsi30");
        Assert.NotNull(firstIso);
        Assert.StartsWith(SeedDir + "/", firstIso, StringComparison.Ordinal);
        Assert.Contains(firstIso, OpenFiles(pid));

        // A read-modify-write round trip with the fingerprints keeps the secrets (nothing changes, nothing swaps).
        var (read, etag) = await Client.GetVmAsync(id);
        var unchanged = await Client.UpdateVmAsync(id, read.ToSpec(), etag);
        Assert.Empty(unchanged.Value.Changes);
        Assert.Equal(firstIso, await SeedInDriveAsync(id, "scsi30"));

        // New user-data: a new seed ISO, swapped live; same QEMU; the instance-id stays (on_change none).
        var update = WithCloudInit(Specs.Running(created.Name), "#cloud-config\nruncmd: [echo two]\n");
        update.VmId = id;
        var result = (await Client.UpdateVmAsync(id, update)).Value;
        Assert.All(result.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Contains(result.Changes, c => c.Attribute == "cloud_init.user_data");
        Assert.Equal(pid, (int)result.Vm.Pid!.Value);
        Assert.Null(result.Vm.PendingChanges);
        Assert.Equal(firstId, result.Vm.CloudInitInstanceId);
        var secondIso = await SeedInDriveAsync(id, "scsi30");
        Assert.NotEqual(firstIso, secondIso);
        Assert.Contains(secondIso!, OpenFiles(pid));
        Assert.DoesNotContain(firstIso, OpenFiles(pid));
        Assert.False(File.Exists(firstIso));

        // reprovision: another seed with a new instance-id, and the guest is reset in the same process.
        var reprovision = WithCloudInit(Specs.Running(created.Name), "#cloud-config\nruncmd: [echo three]\n", "reprovision");
        reprovision.VmId = id;
        var third = (await Client.UpdateVmAsync(id, reprovision)).Value;
        Assert.Equal(pid, (int)third.Vm.Pid!.Value);
        Assert.Equal("running", third.Vm.Status);
        Assert.NotEqual(firstId, third.Vm.CloudInitInstanceId);
        Assert.NotEqual(secondIso, await SeedInDriveAsync(id, "scsi30"));
        Assert.True(ProcessTable.IsAlive(pid));

        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.Empty(Directory.EnumerateFileSystemEntries(SeedDir));
    }

    [Fact]
    public async Task RenamingAVmWhoseHostNameIsItsNameSwapsTheSeed()
    {
        var spec = Specs.Running();
        spec.CloudInit = new CloudInitSpec();
        var created = (await Client.CreateVmAsync(spec)).Value;
        var id = created.VmId!.Value;
        var before = await SeedInDriveAsync(id, "scsi30");
        var renamed = Specs.Running(created.Name + "-b");
        renamed.VmId = id;
        renamed.CloudInit = new CloudInitSpec();
        var result = (await Client.UpdateVmAsync(id, renamed)).Value;
        Assert.Equal(created.Pid, result.Vm.Pid);
        var after = await SeedInDriveAsync(id, "scsi30");
        Assert.NotEqual(before, after);
        var meta = await new Kvm.Agent.Tests.Storage.TestCommandRunner().RunAsync(["isoinfo", "-J", "-i", after!, "-x", "/meta-data"], TimeSpan.FromSeconds(30));
        Assert.Contains($"local-hostname: \"{created.Name}-b\"", meta.StdOut, StringComparison.Ordinal);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public async Task AddingCloudInitToARunningVmWaitsForTheNextStart()
    {
        var created = (await Client.CreateVmAsync(Specs.Running())).Value;
        var id = created.VmId!.Value;
        var spec = WithCloudInit(Specs.Running(created.Name), "#cloud-config\n{}\n");
        spec.VmId = id;
        var result = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Equal(["cloud_init"], result.Vm.PendingChanges);
        await Client.StopVmAsync(id);
        var started = await Client.StartVmAsync(id);
        Assert.NotNull(await SeedInDriveAsync(id, "scsi30"));
        Assert.NotNull(started.CloudInitInstanceId);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.Empty(Directory.EnumerateFileSystemEntries(SeedDir));
    }
}
