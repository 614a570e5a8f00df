using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// Images, storage pools, volumes and the functions, through <see cref="Deployment"/> (the engine's
/// step generator) and the real plugin binary, against a real kvm-agent this class starts.
/// </summary>
public sealed class ResourceLifecycleTests(AgentLifecycleTests.Agent agent) : IClassFixture<AgentLifecycleTests.Agent>, IAsyncLifetime
{
    private const string ImageToken = "kvm:index/image:Image";
    private const string PoolToken = "kvm:index/storagePool:StoragePool";
    private const string VolumeToken = "kvm:index/volume:Volume";
    private const string VmToken = "kvm:index/vm:Vm";

    private readonly string _dir = Directory.CreateTempSubdirectory("kvm-pulumi-res-").FullName;
    private EngineSession _session = null!;

    public async Task InitializeAsync()
    {
        _session = await EngineSession.StartAsync();
        await _session.ConfigureAsync(EngineSession.Config(agent.Process.Endpoint, agent.Process.Token));
    }

    public async Task DisposeAsync()
    {
        await _session.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static Struct Parse(string json) => StructCodecTests.Parse(json);

    private static Goal Resource(string token, string name, string json) => new(token, name, _ => Parse(json));

    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task ImagesFromAHostFileAndFromALoopbackUrlLiveReplaceImportAndRefuseDeletionWhileCloned()
    {
        var source = Path.Combine(_dir, "source.qcow2");
        Run("qemu-img", "create", "-q", "-f", "qcow2", source, "64M");
        await using var server = await OneFileServer.StartAsync(await File.ReadAllBytesAsync(source));
        var fileName = Unique("file-") + ".qcow2";
        var urlName = Unique("url-") + ".qcow2";
        var deployment = new Deployment(_session);
        Goal FromFile(string extra = "") => Resource(ImageToken, "fromFile", $$"""{"name":"{{fileName}}","sourcePath":"{{source}}"{{extra}}}""");
        Goal FromUrl(string name) => Resource(ImageToken, "fromUrl", $$"""{"name":"{{name}}","url":"{{server.Url}}"}""");

        // Preview: two creates, nothing imported yet.
        Assert.Equal(["create", "create"], (await deployment.PreviewAsync([FromFile(), FromUrl(urlName)])).Select(s => s.Op));
        Assert.Empty(await agent.Process.Client.ListImagesAsync());
        Assert.Equal(0, server.Requests);

        await deployment.UpAsync([FromFile(), FromUrl(urlName)]);
        Assert.Equal(1, server.Requests);
        foreach (var (resource, name) in new[] { ("fromFile", fileName), ("fromUrl", urlName) })
        {
            var outputs = deployment[resource].Outputs.Fields;
            Assert.Equal($"default/{name}", deployment[resource].Id);
            Assert.Equal($"default/{name}", outputs["imageId"].StringValue);
            Assert.Equal("qcow2", outputs["format"].StringValue);
            Assert.Equal(64d * 1024 * 1024, outputs["virtualSizeBytes"].NumberValue);
            Assert.Equal(64, outputs["sha256"].StringValue.Length);
        }
        Assert.All(await deployment.PreviewAsync([FromFile(), FromUrl(urlName)]), s => Assert.Equal("same", s.Op));

        // Nothing about an image changes in place: a new name replaces it, creating first.
        var renamed = Unique("url-") + ".qcow2";
        const string Raw = ",\"convertTo\":\"raw\"";
        var preview = await deployment.PreviewAsync([FromFile(), FromUrl(renamed)]);
        Assert.Equal(["same", "replace"], preview.Select(s => s.Op));
        Assert.Equal(2, (await agent.Process.Client.ListImagesAsync()).Count);
        await deployment.UpAsync([FromFile(), FromUrl(renamed)]);
        // Create-before-delete: the second Check has no olds, and the old image goes at the very end.
        Assert.Equal(["Check fromFile", "Diff fromFile", "Check fromUrl", "Diff fromUrl", "Check fromUrl", "Create fromUrl", "Delete fromUrl"], deployment.Calls);
        Assert.Equal(2, server.Requests);
        Assert.Equal(new[] { fileName, renamed }.Order(StringComparer.Ordinal), (await agent.Process.Client.ListImagesAsync()).Select(i => i.Name!).Order(StringComparer.Ordinal));

        // Same name, converted: the old image must go first.
        Assert.Equal(["delete-replaced", "same"], (await deployment.UpAsync([FromFile(Raw), FromUrl(renamed)])).Select(s => s.Op));
        Assert.Equal(["Check fromFile", "Diff fromFile", "Check fromFile", "Delete fromFile", "Create fromFile", "Check fromUrl", "Diff fromUrl"], deployment.Calls);
        Assert.Equal("raw", deployment["fromFile"].Outputs.Fields["format"].StringValue);

        // Import into a fresh stack: Read by id, Check with the read inputs, and no diff.
        var imported = new Deployment(_session);
        await imported.UpAsync([FromFile(Raw) with { ImportId = $"default/{fileName}" }]);
        Assert.Equal(["import"], imported.Steps.Select(s => s.Op));
        Assert.Equal(["Read fromFile", "Check fromFile", "Diff fromFile"], imported.Calls);
        var mismatched = new Deployment(_session);
        var mismatch = await Assert.ThrowsAsync<DeploymentFailedException>(() =>
            mismatched.UpAsync([FromFile() with { ImportId = $"default/{fileName}" }], skipPreview: true));
        Assert.Contains("convertTo", mismatch.Message);

        // A linked clone keeps the image: removing the image from the program (the VM now names it
        // literally) fails its delete, clearly, and it stays in the state and on the host.
        var cloneName = Unique("clone-");
        Goal Clone(Func<OutputOf, Value> imageId) => new(VmToken, "clone", outputs =>
        {
            var inputs = Parse($$"""{"name":"{{cloneName}}","powerState":"stopped","memory":{"sizeMib":128} }""");
            var disk = new Struct();
            disk.Fields["imageId"] = imageId(outputs);
            disk.Fields["linkedClone"] = Value.ForBool(true);
            var disks = new Struct();
            disks.Fields["virtio0"] = Value.ForStruct(disk);
            inputs.Fields["disks"] = Value.ForStruct(disks);
            return inputs;
        });
        await deployment.UpAsync([FromFile(Raw), FromUrl(renamed), Clone(outputs => outputs("fromUrl", "imageId"))]);
        var vmId = deployment["clone"].Id;
        Assert.Contains($"{vmId}/virtio0", (await agent.Process.Client.GetImageAsync("default", renamed)).Value.UsedBy!);

        var refused = await Assert.ThrowsAsync<DeploymentFailedException>(() =>
            deployment.UpAsync([FromFile(Raw), Clone(_ => Value.ForString($"default/{renamed}"))], skipPreview: true));
        Assert.Equal(("fromUrl", "delete"), (refused.Resource, refused.Op));
        Assert.NotEqual(StatusCode.Unknown, refused.Error.StatusCode);
        Assert.NotEqual(StatusCode.Internal, refused.Error.StatusCode);
        Assert.Contains("linked clone", refused.Error.Message);
        Assert.Contains($"{vmId}/virtio0", refused.Error.Message);
        Assert.NotNull(deployment.Find("fromUrl"));
        Assert.NotNull((await agent.Process.Client.GetImageAsync("default", renamed)).Value);

        // Destroy: the clone first (reverse order), then the images; nothing is left.
        await deployment.DestroyAsync();
        Assert.Empty(await agent.Process.Client.ListImagesAsync());
        Assert.DoesNotContain(await agent.Process.Client.ListVmsAsync(), v => v.Name == cloneName);
    }

    [Fact]
    public async Task StoragePoolVolumeAndVmWithPreviewUnknownsFunctionsDriftIgnoreChangesAndReplace()
    {
        var poolName = Unique("p");
        var poolPath = Path.Combine(_dir, "pool");
        var vmName = Unique("vm-");
        var volumeSize = 1;
        var description = "one";
        var ignore = Array.Empty<string>();
        var pool = Resource(PoolToken, "pool", $$"""{"name":"{{poolName}}","path":"{{poolPath}}"}""");
        Goal Volume() => new(VolumeToken, "data", outputs =>
        {
            var inputs = Parse($$"""{"name":"data.qcow2","sizeGib":{{volumeSize}}}""");
            inputs.Fields["pool"] = outputs("pool", "name");
            return inputs;
        });
        Goal Vm() => new(VmToken, "vm", outputs =>
        {
            var inputs = Parse($$"""{"name":"{{vmName}}","powerState":"stopped","description":"{{description}}","memory":{"sizeMib":128},"disks":{"scsi0":{"sizeGib":1},"scsi1":{} } }""");
            inputs.Fields["disks"].StructValue.Fields["scsi1"].StructValue.Fields["volumeId"] = outputs("data", "volumeId");
            return inputs;
        }) { IgnoreChanges = ignore };
        List<Goal> Program() => [pool, Volume(), Vm()];
        var deployment = new Deployment(_session);

        // Preview: the volume id is computed by the agent, so the VM's Check and Create see an unknown.
        Assert.Equal(["create", "create", "create"], (await deployment.PreviewAsync(Program())).Select(s => s.Op));
        Assert.Equal(["Check pool", "Create pool", "Check data", "Create data", "Check vm", "Create vm"], deployment.Calls);
        Assert.DoesNotContain(await agent.Process.Client.ListStoragePoolsAsync(), p => p.Name == poolName);

        await deployment.UpAsync(Program());
        Assert.Equal($"{poolName}/data.qcow2", deployment["vm"].Outputs.Fields["disks"].StructValue.Fields["scsi1"].StructValue.Fields["volumeId"].StringValue);
        Assert.Equal(poolName, deployment["pool"].Id);
        Assert.True(File.Exists(Path.Combine(poolPath, "data.qcow2")));

        // getHost lists the pool; getVm reads the VM; a preview invoke runs too (the engine sends invoke_with_preview).
        var host = await _session.InvokeAsync("kvm:index/getHost:getHost", new Struct(), preview: true);
        Assert.Empty(host.Failures);
        Assert.False(string.IsNullOrEmpty(host.Return.Fields["qemuVersion"].StringValue));
        Assert.Contains(host.Return.Fields["storagePools"].ListValue.Values, p => p.StringValue == poolName);
        var vmArgs = new Struct();
        vmArgs.Fields["vmId"] = Value.ForNumber(double.Parse(deployment["vm"].Id, System.Globalization.CultureInfo.InvariantCulture));
        var read = await _session.InvokeAsync("kvm:index/getVm:getVm", vmArgs);
        Assert.Empty(read.Failures);
        Assert.Equal(vmName, read.Return.Fields["name"].StringValue);
        Assert.Equal("stopped", read.Return.Fields["status"].StringValue);
        vmArgs.Fields["vmId"] = Value.ForNumber(999999);
        var missing = await _session.InvokeAsync("kvm:index/getVm:getVm", vmArgs);
        Assert.Equal("vmId", Assert.Single(missing.Failures).Property);

        // In place: the volume grows, the VM's description changes.
        volumeSize = 2;
        description = "two";
        // A preview of an update asks the plugin (Update with preview=true) and changes nothing.
        Assert.Equal(["same", "update", "update"], (await deployment.PreviewAsync(Program())).Select(s => s.Op));
        Assert.Equal(["Check pool", "Diff pool", "Check data", "Diff data", "Update data", "Check vm", "Diff vm", "Update vm"], deployment.Calls);
        Assert.Equal(1, (await agent.Process.Client.GetVolumeAsync(poolName, "data.qcow2")).Value.SizeGib);
        Assert.Equal(["same", "update", "update"], (await deployment.UpAsync(Program())).Select(s => s.Op));
        Assert.Equal(2, (await agent.Process.Client.GetVolumeAsync(poolName, "data.qcow2")).Value.SizeGib);
        Assert.Equal("two", (await agent.Process.Client.GetVmAsync(long.Parse(deployment["vm"].Id, System.Globalization.CultureInfo.InvariantCulture))).Value.Description);

        // ignoreChanges: a new description is neither previewed nor applied.
        description = "ignored";
        ignore = ["description"];
        Assert.Equal(["same", "same", "same"], (await deployment.UpAsync(Program())).Select(s => s.Op));
        Assert.Equal("two", (await agent.Process.Client.GetVmAsync(long.Parse(deployment["vm"].Id, System.Globalization.CultureInfo.InvariantCulture))).Value.Description);
        // Drift in an ignored property (changed on the host, then refreshed) does not show either.
        var vmId = long.Parse(deployment["vm"].Id, System.Globalization.CultureInfo.InvariantCulture);
        var current = await agent.Process.Client.GetVmAsync(vmId);
        var spec = current.Value.ToSpec();
        spec.Description = "changed on the host";
        await agent.Process.Client.UpdateVmAsync(vmId, spec, current.ETag);
        await deployment.RefreshAsync();
        Assert.Equal(["refresh", "refresh", "refresh-drift"], deployment.Steps.Select(s => s.Op));
        Assert.Equal("changed on the host", deployment["vm"].Outputs.Fields["description"].StringValue);
        Assert.Equal(["same", "same", "same"], (await deployment.PreviewAsync(Program())).Select(s => s.Op));
        ignore = [];
        description = "two";
        Assert.Equal(["same", "same", "update"], (await deployment.UpAsync(Program())).Select(s => s.Op));

        // Drift: the VM deleted behind the stack's back; refresh drops it and up makes it again.
        await agent.Process.Client.DeleteVmAsync(vmId, Kvm.Client.RunningVmDeletion.Force);
        await deployment.RefreshAsync();
        Assert.Equal(["refresh", "refresh", "refresh-gone"], deployment.Steps.Select(s => s.Op));
        Assert.Equal(["same", "same", "create"], (await deployment.UpAsync(Program())).Select(s => s.Op));

        // Import the pool by name into a fresh stack: no diff.
        var imported = new Deployment(_session);
        await imported.UpAsync([pool with { ImportId = poolName }]);
        Assert.Equal(poolName, imported["pool"].Id);

        // Destroy in reverse order: VM, volume, pool; the pool's volume file goes with the volume.
        await deployment.DestroyAsync();
        Assert.Equal(["vm", "data", "pool"], deployment.Steps.Select(s => s.Resource));
        Assert.DoesNotContain(await agent.Process.Client.ListStoragePoolsAsync(), p => p.Name == poolName);
        Assert.False(File.Exists(Path.Combine(poolPath, "data.qcow2")));

        // A pool that changes its path keeps its name: it is replaced, deleting first.
        var moved = Path.Combine(_dir, "moved");
        var alone = new Deployment(_session);
        await alone.UpAsync([pool]);
        Assert.Equal(["delete-replaced"], (await alone.UpAsync([Resource(PoolToken, "pool", $$"""{"name":"{{poolName}}","path":"{{moved}}"}""")])).Select(s => s.Op));
        Assert.Equal(moved, (await agent.Process.Client.GetStoragePoolAsync(poolName)).Value.Path);
        await alone.DestroyAsync();
        Assert.DoesNotContain(await agent.Process.Client.ListStoragePoolsAsync(), p => p.Name == poolName);
    }

    [Fact]
    public async Task APartialCreateOrUpdateIsKeptWithItsInitErrorsAndTheNextUpFinishesItAndSecretsStaySecret()
    {
        await using var proxy = new FaultProxy(agent.Process.Endpoint);
        await using var session = await EngineSession.StartAsync();
        await session.ConfigureAsync(EngineSession.Config(proxy.Endpoint, agent.Process.Token));
        var deployment = new Deployment(session);
        var name = Unique("partial-");
        var vm = new Goal(VmToken, "vm", _ =>
        {
            var inputs = Parse($$"""{"name":"{{name}}","powerState":"stopped","memory":{"sizeMib":128} }""");
            inputs.Fields["description"] = EngineSession.Secret(Value.ForString("hush"));
            return inputs;
        });

        // The VM is made, but the plugin's read-back is cut off: ErrorResourceInitFailed with the VM's id and state.
        proxy.DropReadAfterNextCreate();
        var failed = await Assert.ThrowsAsync<DeploymentFailedException>(() => deployment.UpAsync([vm], skipPreview: true));
        Assert.Equal(1, proxy.Dropped);
        Assert.Equal("create", failed.Op);
        var detail = failed.Error.GetDetail<Kvm.Protocol.Pulumirpc.ErrorResourceInitFailed>();
        Assert.NotNull(detail);
        Assert.NotEqual(StatusCode.Unavailable, failed.Error.StatusCode);
        var kept = deployment["vm"];
        Assert.Equal(detail.Id, kept.Id);
        Assert.NotEmpty(kept.InitErrors);
        Assert.Equal(name, kept.Outputs.Fields["name"].StringValue);
        var created = Assert.Single(await agent.Process.Client.ListVmsAsync(), v => v.Name == name);
        Assert.Equal(kept.Id, created.VmId!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // Same program again: no diff, but the init errors make the engine update it.
        Assert.Equal(["update"], (await deployment.UpAsync([vm])).Select(s => s.Op));
        Assert.Empty(deployment["vm"].InitErrors);
        Assert.Equal(["same"], (await deployment.PreviewAsync([vm])).Select(s => s.Op));

        // An update whose answer is lost after the agent applied it: the plugin reads the VM back and
        // reports what is there as ErrorResourceInitFailed, so the stack records the change.
        var described = vm with
        {
            Inputs = _ =>
            {
                var inputs = vm.Inputs(null!);
                inputs.Fields["memory"] = Value.ForStruct(Parse("""{"sizeMib":192}"""));
                return inputs;
            },
        };
        proxy.DropReadAfterNextUpdate();
        var lost = await Assert.ThrowsAsync<DeploymentFailedException>(() => deployment.UpAsync([described], skipPreview: true));
        Assert.Equal("update", lost.Op);
        Assert.NotNull(lost.Error.GetDetail<Kvm.Protocol.Pulumirpc.ErrorResourceInitFailed>());
        Assert.Equal(192d, deployment["vm"].Outputs.Fields["memory"].StructValue.Fields["sizeMib"].NumberValue);
        Assert.NotEmpty(deployment["vm"].InitErrors);
        Assert.Equal(["update"], (await deployment.UpAsync([described])).Select(s => s.Op));
        Assert.Empty(deployment["vm"].InitErrors);
        Assert.Equal(192, (await agent.Process.Client.GetVmAsync(long.Parse(kept.Id, System.Globalization.CultureInfo.InvariantCulture))).Value.Memory!.SizeMib);

        // The secret input comes back as a secret output, also after a refresh.
        static void AssertSecret(Value value) =>
            Assert.Equal(Sentinels.SecretSignature, value.StructValue.Fields[Sentinels.SignatureKey].StringValue);
        AssertSecret(deployment["vm"].Outputs.Fields["description"]);
        await deployment.RefreshAsync();
        AssertSecret(deployment["vm"].Outputs.Fields["description"]);
        AssertSecret(deployment["vm"].Inputs.Fields["description"]);

        await deployment.DestroyAsync();
        Assert.DoesNotContain(await agent.Process.Client.ListVmsAsync(), v => v.Name == name);
    }

    private static void Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} failed: {error}");
    }

    /// <summary>Serves one file over HTTP/1.1 on 127.0.0.1 (loopback only) and counts the requests.</summary>
    private sealed class OneFileServer : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly byte[] _content;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private int _requests;

        private OneFileServer(byte[] content)
        {
            _content = content;
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _loop = ServeAsync();
        }

        public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/image.qcow2";

        public int Requests => Volatile.Read(ref _requests);

        public static Task<OneFileServer> StartAsync(byte[] content) => Task.FromResult(new OneFileServer(content));

        private async Task ServeAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        var stream = client.GetStream();
                        var reader = new StreamReader(stream);
                        var requestLine = await reader.ReadLineAsync();
                        while (!string.IsNullOrEmpty(await reader.ReadLineAsync()))
                        {
                            // Headers are not needed.
                        }
                        Interlocked.Increment(ref _requests);
                        var found = requestLine?.StartsWith("GET /image.qcow2 ", StringComparison.Ordinal) == true;
                        var head = found
                            ? $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {_content.Length}\r\nConnection: close\r\n\r\n"
                            : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(head));
                        if (found)
                            await stream.WriteAsync(_content);
                    }
                });
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _loop;
            _stop.Dispose();
        }
    }
}
