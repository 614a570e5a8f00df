using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Kvm.Client;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// kvm_volume, kvm_storage_pool and kvm_image through the real terraform, the built provider and a
/// real kvm-agent: apply, empty plan, update, replacement, import both ways, drift, destroy, and the
/// host checked afterwards through the agent API and its data directory.
/// </summary>
[Collection(TerraformCollection.Name)]
public class StorageLifecycleTests(TerraformFixture terraform)
{
    private const long GiB = 1L << 30;

    private static async Task<bool> GoneAsync(Func<Task> read)
    {
        try
        {
            await read();
            return false;
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return true;
        }
    }

    [Fact]
    public async Task A_volume_goes_through_its_whole_lifecycle()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        string Config(string name, int size) => TerraformWorkspace.Header(agent) + $$"""
            resource "kvm_volume" "t" {
              name     = "{{name}}"
              size_gib = {{size}}
            }
            """;
        var tf = new TerraformWorkspace(terraform, Config("tf-vol.qcow2", 1));

        tf.Apply();
        var created = (await agent.Client.GetVolumeAsync("default", "tf-vol.qcow2")).Value;
        Assert.Equal(GiB, created.CapacityBytes);
        Assert.True(File.Exists(created.Path));
        Assert.Equal("default/tf-vol.qcow2", (string)tf.State("kvm_volume.t")["volume_id"]!);
        tf.AssertEmptyPlan();

        // Growing applies in place.
        tf.Write(Config("tf-vol.qcow2", 2));
        Assert.Contains("updated in-place", tf.PlanWithChanges(), StringComparison.Ordinal);
        tf.Apply();
        Assert.Equal(2 * GiB, (await agent.Client.GetVolumeAsync("default", "tf-vol.qcow2")).Value.CapacityBytes);
        Assert.Equal(2 * GiB, (long)tf.State("kvm_volume.t")["capacity_bytes"]!);
        tf.AssertEmptyPlan();

        // Shrinking is refused with the attribute named, and nothing changes.
        tf.Write(Config("tf-vol.qcow2", 1));
        var shrink = tf.ApplyFails();
        Assert.Contains("size_gib", shrink.Output, StringComparison.Ordinal);
        Assert.Equal(2 * GiB, (await agent.Client.GetVolumeAsync("default", "tf-vol.qcow2")).Value.CapacityBytes);

        // A new name replaces the volume: the old file goes.
        var body = Config("tf-vol-b.qcow2", 2);
        tf.Write(body);
        Assert.Contains("must be replaced", tf.PlanWithChanges(), StringComparison.Ordinal);
        tf.Apply();
        Assert.True(await GoneAsync(() => agent.Client.GetVolumeAsync("default", "tf-vol.qcow2")));
        Assert.False(File.Exists(created.Path));
        Assert.Equal("default/tf-vol-b.qcow2", (string)tf.State("kvm_volume.t")["volume_id"]!);
        tf.AssertEmptyPlan();

        tf.RoundTripImport(body, "kvm_volume.t", "default/tf-vol-b.qcow2");

        // Deleted behind terraform's back: refresh drops it, apply makes it again.
        await agent.Client.DeleteVolumeAsync("default", "tf-vol-b.qcow2");
        Assert.Contains("1 to add", tf.PlanWithChanges(), StringComparison.Ordinal);
        tf.Apply();
        Assert.Equal(2 * GiB, (await agent.Client.GetVolumeAsync("default", "tf-vol-b.qcow2")).Value.CapacityBytes);
        tf.AssertEmptyPlan();

        tf.Destroy();
        Assert.Empty(await agent.Client.ListVolumesAsync());
        Assert.Equal(before, HostFiles.Files(data));
    }

    [Fact]
    public async Task A_storage_pool_goes_through_its_whole_lifecycle()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var parent = Directory.CreateTempSubdirectory("kvm-tf-pool-").FullName;
        try
        {
            var first = Path.Combine(parent, "a");
            var second = Path.Combine(parent, "b");
            // The pool's volume shows that a volume in a terraform-made pool lives in its directory,
            // and that destroy orders the volume before its pool.
            string Config(string path, int size, string lifecycle = "") => TerraformWorkspace.Header(agent) + $$"""
                resource "kvm_storage_pool" "t" {
                  name = "tfpool"
                  path = "{{path}}"
                }

                resource "kvm_volume" "v" {
                  name     = "in-pool.raw"
                  pool     = kvm_storage_pool.t.name
                  format   = "raw"
                  size_gib = {{size}}
                  {{lifecycle}}
                }
                """;
            var tf = new TerraformWorkspace(terraform, Config(first, 1));

            tf.Apply();
            var pool = (await agent.Client.GetStoragePoolAsync("tfpool")).Value;
            Assert.Equal(first, pool.Path);
            Assert.False((bool)tf.State("kvm_storage_pool.t")["builtin"]!);
            Assert.True((long)tf.State("kvm_storage_pool.t")["capacity_bytes"]! > 0);
            Assert.True(File.Exists(Path.Combine(first, "in-pool.raw")));
            tf.AssertEmptyPlan();

            // Nothing of a pool changes in place; its volume does.
            tf.Write(Config(first, 2));
            Assert.Contains("1 to change", tf.PlanWithChanges(), StringComparison.Ordinal);
            tf.Apply();
            Assert.Equal(2 * GiB, new FileInfo(Path.Combine(first, "in-pool.raw")).Length);
            tf.AssertEmptyPlan();

            // A new path replaces the pool. The agent refuses to forget a pool that still holds a
            // volume, so on its own the replacement fails, naming the volume, and nothing changes.
            tf.Write(Config(second, 2));
            Assert.Contains("kvm_storage_pool.t must be replaced", tf.PlanWithChanges(), StringComparison.Ordinal);
            var refused = tf.ApplyFails();
            Assert.Contains("in-pool.raw", refused.Output, StringComparison.Ordinal);
            Assert.Equal(first, (await agent.Client.GetStoragePoolAsync("tfpool")).Value.Path);
            Assert.True(File.Exists(Path.Combine(first, "in-pool.raw")));

            // With replace_triggered_by (terraform's idiom for "lives inside") the volume goes first.
            var body = Config(second, 2, "lifecycle {\n    replace_triggered_by = [kvm_storage_pool.t]\n  }");
            tf.Write(body);
            var replace = tf.PlanWithChanges();
            Assert.Contains("kvm_storage_pool.t must be replaced", replace, StringComparison.Ordinal);
            Assert.Contains("2 to add, 0 to change, 2 to destroy", replace, StringComparison.Ordinal);
            tf.Apply();
            Assert.Equal(second, (await agent.Client.GetStoragePoolAsync("tfpool")).Value.Path);
            Assert.Empty(HostFiles.Files(first));
            Assert.True(File.Exists(Path.Combine(second, "in-pool.raw")));
            tf.AssertEmptyPlan();

            tf.RoundTripImport(body, "kvm_storage_pool.t", "tfpool");
            tf.RoundTripImport(body, "kvm_volume.v", "tfpool/in-pool.raw");

            tf.Destroy();
            Assert.Equal(["default"], (await agent.Client.ListStoragePoolsAsync()).Select(p => p.Name));
            Assert.Empty(await agent.Client.ListVolumesAsync());
            // The agent keeps a pool's directory (it may have existed before) but nothing in it.
            Assert.Empty(HostFiles.Files(second));
            Assert.Equal(before, HostFiles.Files(data));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task A_storage_pool_deleted_behind_terraforms_back_is_made_again()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var parent = Directory.CreateTempSubdirectory("kvm-tf-pool-").FullName;
        try
        {
            var tf = new TerraformWorkspace(terraform, TerraformWorkspace.Header(agent) + $$"""
                resource "kvm_storage_pool" "t" {
                  name = "drifting"
                  path = "{{parent}}/p"
                }
                """);
            tf.Apply();
            await agent.Client.DeleteStoragePoolAsync("drifting");
            Assert.Contains("1 to add", tf.PlanWithChanges(), StringComparison.Ordinal);
            tf.Apply();
            Assert.Equal(Path.Combine(parent, "p"), (await agent.Client.GetStoragePoolAsync("drifting")).Value.Path);
            tf.AssertEmptyPlan();
            tf.Destroy();
            Assert.True(await GoneAsync(() => agent.Client.GetStoragePoolAsync("drifting")));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task Images_import_from_a_host_file_and_from_an_http_url()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var source = Directory.CreateTempSubdirectory("kvm-tf-img-").FullName;
        try
        {
            var file = Path.Combine(source, "base.qcow2");
            QemuImgCreate(file, "qcow2", "64M");
            var gz = Path.Combine(source, "served.qcow2.gz");
            GzipFile(file, gz);
            var gzSha256 = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(gz)));
            using var server = StaticHttpServer.Serve(source);
            var url = server.UrlOf("served.qcow2.gz");

            string Config(string fileExtra) => TerraformWorkspace.Header(agent) + $$"""
                resource "kvm_image" "file" {
                  name        = "from-file.img"
                  source_path = "{{file}}"
                  {{fileExtra}}
                }

                resource "kvm_image" "web" {
                  name     = "from-web.qcow2"
                  url      = "{{url}}"
                  checksum = "{{gzSha256}}"
                }
                """;
            var tf = new TerraformWorkspace(terraform, Config(""));

            tf.Apply();
            var web = (await agent.Client.GetImageAsync("default", "from-web.qcow2")).Value;
            Assert.Equal("qcow2", web.Format);
            Assert.Equal(64L << 20, web.VirtualSizeBytes);
            Assert.Equal(1, server.Requests("served.qcow2.gz"));
            var fromFile = (await agent.Client.GetImageAsync("default", "from-file.img")).Value;
            Assert.Equal("qcow2", fromFile.Format);
            Assert.True(File.Exists(fromFile.Path));
            Assert.True(File.Exists(file), "the source file stays");
            Assert.Equal("default/from-web.qcow2", (string)tf.State("kvm_image.web")["image_id"]!);
            Assert.Equal(web.Sha256, (string)tf.State("kvm_image.web")["sha256"]!);
            tf.AssertEmptyPlan();
            Assert.Equal(1, server.Requests("served.qcow2.gz"));

            // Every image setting is create-only: converting replaces the image.
            var body = Config("convert_to = \"raw\"");
            tf.Write(body);
            var replace = tf.PlanWithChanges();
            Assert.Contains("kvm_image.file must be replaced", replace, StringComparison.Ordinal);
            Assert.Contains("1 to add, 0 to change, 1 to destroy", replace, StringComparison.Ordinal);
            tf.Apply();
            Assert.Equal("raw", (await agent.Client.GetImageAsync("default", "from-file.img")).Value.Format);
            Assert.Equal("raw", (string)tf.State("kvm_image.file")["format"]!);
            tf.AssertEmptyPlan();

            tf.RoundTripImport(body, "kvm_image.web", "default/from-web.qcow2");
            tf.RoundTripImport(body, "kvm_image.file", "default/from-file.img");
            Assert.Equal(1, server.Requests("served.qcow2.gz"));

            // Deleted behind terraform's back: downloaded again.
            await agent.Client.DeleteImageAsync("default", "from-web.qcow2");
            Assert.Contains("1 to add", tf.PlanWithChanges(), StringComparison.Ordinal);
            tf.Apply();
            Assert.Equal(2, server.Requests("served.qcow2.gz"));
            tf.AssertEmptyPlan();

            // A wrong checksum fails the import, names the attribute and leaves nothing.
            tf.Write(body + $$"""

                resource "kvm_image" "bad" {
                  name     = "bad.qcow2"
                  url      = "{{url}}"
                  checksum = "{{new string('0', 64)}}"
                }
                """);
            var bad = tf.ApplyFails();
            Assert.Contains("checksum", bad.Output, StringComparison.Ordinal);
            Assert.True(await GoneAsync(() => agent.Client.GetImageAsync("default", "bad.qcow2")));
            tf.Write(body);

            tf.Destroy();
            Assert.Empty(await agent.Client.ListImagesAsync());
            Assert.Equal(before, HostFiles.Files(data));
        }
        finally
        {
            Directory.Delete(source, recursive: true);
        }
    }

    [Fact]
    public async Task The_host_and_vm_data_sources_read_the_agent()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var host = await agent.Client.GetHostAsync();
        var vm = (await agent.Client.CreateVmAsync(new Kvm.Model.VmSpec
        {
            Name = "looked-up",
            Description = "made outside terraform",
            Memory = new Kvm.Model.MemorySpec { SizeMib = 64 },
            PowerState = "stopped",
        })).Value;
        var tf = new TerraformWorkspace(terraform, TerraformWorkspace.Header(agent) + """
            data "kvm_host" "this" {}

            data "kvm_vm" "by_name" {
              name = "looked-up"
            }

            data "kvm_vm" "by_id" {
              vm_id = data.kvm_vm.by_name.vm_id
            }

            output "qemu" { value = data.kvm_host.this.qemu_version }
            output "cores" { value = data.kvm_host.this.cpu_cores }
            output "pools" { value = data.kvm_host.this.storage_pools }
            output "vm_id" { value = data.kvm_vm.by_name.vm_id }
            output "status" { value = data.kvm_vm.by_id.status }
            output "description" { value = data.kvm_vm.by_id.description }
            output "memory" { value = data.kvm_vm.by_id.memory.size_mib }
            """);
        tf.Apply();
        var outputs = tf.Outputs();
        Assert.Equal(host.QemuVersion, (string)outputs["qemu"]!["value"]!);
        Assert.Equal(host.CpuCores, (int)outputs["cores"]!["value"]!);
        Assert.Contains("default", outputs["pools"]!["value"]!.AsArray().Select(p => (string)p!));
        Assert.Equal(vm.VmId, (long)outputs["vm_id"]!["value"]!);
        Assert.Equal("stopped", (string)outputs["status"]!["value"]!);
        Assert.Equal("made outside terraform", (string)outputs["description"]!["value"]!);
        Assert.Equal(64, (long)outputs["memory"]!["value"]!);
        tf.AssertEmptyPlan();

        // A VM that does not exist is an error naming it, not an empty result.
        tf.Write(TerraformWorkspace.Header(agent) + """
            data "kvm_vm" "missing" {
              name = "no-such-vm"
            }
            """);
        var missing = tf.Run("plan", "-input=false", "-no-color");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("no-such-vm", missing.Output, StringComparison.Ordinal);
    }

    private static void QemuImgCreate(string path, string format, string size)
    {
        var start = new ProcessStartInfo("qemu-img") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "create", "-q", "-f", format, path, size })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, error);
    }

    private static void GzipFile(string from, string to)
    {
        using var input = File.OpenRead(from);
        using var output = File.Create(to);
        using var gzip = new GZipStream(output, CompressionLevel.Fastest);
        input.CopyTo(gzip);
    }
}

/// <summary>
/// Files of one directory over http on 127.0.0.1, for image imports from a URL: a small HTTP/1.1 server
/// on a TcpListener (HttpListener needs a URL ACL dance elsewhere; here it keeps the test explicit),
/// counting requests per file.
/// </summary>
public sealed class StaticHttpServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly string _root;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, int> _requests = [];
    private readonly Task _loop;

    private StaticHttpServer(string root)
    {
        _root = root;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _loop = Task.Run(AcceptLoopAsync);
    }

    public static StaticHttpServer Serve(string root) => new(root);

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string UrlOf(string file) => $"http://127.0.0.1:{Port}/{file}";

    public int Requests(string file)
    {
        lock (_requests)
            return _requests.GetValueOrDefault(file);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, leaveOpen: true);
                var requestLine = await reader.ReadLineAsync() ?? "";
                while (!string.IsNullOrEmpty(await reader.ReadLineAsync()))
                {
                    // Headers: not needed.
                }
                var parts = requestLine.Split(' ');
                var name = parts.Length > 1 ? Uri.UnescapeDataString(parts[1].TrimStart('/')) : "";
                var path = Path.Combine(_root, name);
                var head = parts[0] == "HEAD";
                if (name.Contains('/', StringComparison.Ordinal) || name.Length == 0 || !File.Exists(path))
                {
                    await stream.WriteAsync("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                    return;
                }
                if (!head)
                {
                    lock (_requests)
                        _requests[name] = _requests.GetValueOrDefault(name) + 1;
                }
                var length = new FileInfo(path).Length;
                await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"));
                if (!head)
                {
                    await using var file = File.OpenRead(path);
                    await file.CopyToAsync(stream);
                }
            }
            catch (IOException)
            {
                // The client went away.
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Stopped.
        }
        _stop.Dispose();
    }
}
