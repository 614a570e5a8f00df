using System.Diagnostics;
using System.Security.Cryptography;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// kvm_network, and the examples whose VMs have NICs, through the real terraform against an agent that
/// runs inside a network namespace made for the test (reached over its unix socket). Bridges, taps and
/// guest NICs exist only in that namespace, which is deleted afterwards, also on failure.
/// </summary>
[Collection(TerraformCollection.Name)]
public class NetworkLifecycleTests(TerraformFixture terraform)
{
    private static string Links(string netns) => AgentProcess.Ip("-n", netns, "-o", "-d", "link", "show");

    private static string Addresses(string netns, string device) => AgentProcess.Ip("-n", netns, "-o", "addr", "show", "dev", device);

    /// <summary>Whether this kernel lets a bridge filter VLANs (CONFIG_BRIDGE_VLAN_FILTERING), probed in the namespace.</summary>
    private static bool VlanFilteringAvailable(string netns)
    {
        AgentProcess.Ip("-n", netns, "link", "add", "name", "kvmprobe0", "type", "bridge");
        try
        {
            AgentProcess.Ip("-n", netns, "link", "set", "dev", "kvmprobe0", "type", "bridge", "vlan_filtering", "1");
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        finally
        {
            AgentProcess.Ip("-n", netns, "link", "del", "dev", "kvmprobe0");
        }
    }

    private static void AssertNotOnTheHost(params string[] names)
    {
        var host = AgentProcess.Ip("-o", "link", "show");
        foreach (var name in names)
            Assert.DoesNotContain(name, host, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_network_goes_through_its_whole_lifecycle()
    {
        string netns;
        using (var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot))
        {
            netns = agent.Netns!;
            string Config(string name, string settings) => TerraformWorkspace.Header(agent) + $$"""
                resource "kvm_network" "t" {
                  name = "{{name}}"
                  {{settings}}
                }
                """;
            var tf = new TerraformWorkspace(terraform, Config("kvmtl0", "address = \"192.168.60.1/24\"\n  mtu = 1500"));

            tf.Apply();
            Assert.Matches(@"kvmtl0: .*mtu 1500", Links(netns));
            Assert.Contains("192.168.60.1/24", Addresses(netns, "kvmtl0"), StringComparison.Ordinal);
            var state = tf.State("kvm_network.t");
            Assert.True((bool)state["owned"]!);
            Assert.Equal(1500, (int)state["effective_mtu"]!);
            AssertNotOnTheHost("kvmtl0");
            tf.AssertEmptyPlan();

            // VLAN filtering on a kernel without it (this one) is refused, naming the attribute, and the
            // rest of the same update is not half-applied.
            if (!VlanFilteringAvailable(netns))
            {
                tf.Write(Config("kvmtl0", "address = \"192.168.61.1/24\"\n  mtu = 1400\n  vlan_filtering = true"));
                var refused = tf.ApplyFails();
                Assert.Contains("vlan_filtering", refused.Output, StringComparison.Ordinal);
                Assert.Contains("CONFIG_BRIDGE_VLAN_FILTERING", refused.Output, StringComparison.Ordinal);
                Assert.Matches(@"kvmtl0: .*mtu 1500", Links(netns));
                Assert.Contains("192.168.60.1/24", Addresses(netns, "kvmtl0"), StringComparison.Ordinal);
            }

            // MTU and address (and VLAN filtering where the kernel has it) change in place, on the live bridge.
            var vlan = VlanFilteringAvailable(netns) ? "\n  vlan_filtering = true" : "";
            tf.Write(Config("kvmtl0", "address = \"192.168.61.1/24\"\n  mtu = 1400" + vlan));
            Assert.Contains("updated in-place", tf.PlanWithChanges(), StringComparison.Ordinal);
            tf.Apply();
            Assert.Matches(@"kvmtl0: .*mtu 1400", Links(netns));
            if (vlan.Length > 0)
                Assert.Matches(@"kvmtl0: .*vlan_filtering 1", Links(netns));
            var addresses = Addresses(netns, "kvmtl0");
            Assert.Contains("192.168.61.1/24", addresses, StringComparison.Ordinal);
            Assert.DoesNotContain("192.168.60.1/24", addresses, StringComparison.Ordinal);
            Assert.Equal(1400, (int)tf.State("kvm_network.t")["effective_mtu"]!);
            tf.AssertEmptyPlan();

            // A new name replaces the bridge: the old one is deleted.
            var body = Config("kvmtl1", "address = \"192.168.61.1/24\"\n  mtu = 1400" + vlan);
            tf.Write(body);
            Assert.Contains("must be replaced", tf.PlanWithChanges(), StringComparison.Ordinal);
            tf.Apply();
            Assert.DoesNotContain("kvmtl0", Links(netns), StringComparison.Ordinal);
            Assert.Matches(@"kvmtl1: .*mtu 1400", Links(netns));
            tf.AssertEmptyPlan();

            tf.RoundTripImport(body, "kvm_network.t", "kvmtl1");

            // Deleted behind terraform's back: made again.
            await agent.Client.DeleteNetworkAsync("kvmtl1");
            Assert.DoesNotContain("kvmtl1", Links(netns), StringComparison.Ordinal);
            Assert.Contains("1 to add", tf.PlanWithChanges(), StringComparison.Ordinal);
            tf.Apply();
            Assert.Matches(@"kvmtl1: .*mtu 1400", Links(netns));
            tf.AssertEmptyPlan();

            tf.Destroy();
            Assert.Empty(await agent.Client.ListNetworksAsync());
            Assert.DoesNotContain("kvmtl", Links(netns), StringComparison.Ordinal);
            AssertNotOnTheHost("kvmtl0", "kvmtl1");
        }
        Assert.DoesNotContain(netns, AgentProcess.Ip("netns", "list"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_existing_bridge_is_adopted_and_left_in_place()
    {
        using var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot);
        var netns = agent.Netns!;
        AgentProcess.Ip("-n", netns, "link", "add", "name", "adopted0", "type", "bridge");
        var tf = new TerraformWorkspace(terraform, TerraformWorkspace.Header(agent) + """
            resource "kvm_network" "t" {
              name = "adopted0"
              type = "existing"
            }
            """);
        tf.Apply();
        Assert.False((bool)tf.State("kvm_network.t")["owned"]!);
        tf.AssertEmptyPlan();
        tf.Destroy();
        Assert.Empty(await agent.Client.ListNetworksAsync());
        Assert.Contains("adopted0", Links(netns), StringComparison.Ordinal);
    }

    private TerraformWorkspace Example(string scenario, AgentProcess agent) =>
        new(terraform, File.ReadAllText(Path.Combine(terraform.RepoRoot, "examples", "terraform", scenario, "main.tf")),
            new Dictionary<string, string> { ["KVM_ENDPOINT"] = agent.Endpoint, ["KVM_TOKEN"] = agent.Token });

    /// <summary>
    /// The examples' guests have no OS (or a blank disk) and ignore ACPI power-off: stop them as an admin
    /// would instead of waiting the examples' graceful timeouts, then destroy.
    /// </summary>
    private static async Task StopAllAsync(AgentProcess agent)
    {
        foreach (var vm in await agent.Client.ListVmsAsync())
            await agent.Client.StopVmAsync(vm.VmId!.Value);
    }

    [Fact]
    public async Task The_lab_network_example_puts_two_vms_on_a_bridge()
    {
        string netns;
        using (var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot))
        {
            netns = agent.Netns!;
            var data = await HostFiles.DataDirectoryAsync(agent);
            var before = HostFiles.Files(data);
            var tf = Example("lab-network", agent);
            tf.Apply();

            var vms = (await agent.Client.ListVmsAsync()).OrderBy(v => v.Name, StringComparer.Ordinal).ToList();
            Assert.Equal(["node-a", "node-b"], vms.Select(v => v.Name));
            Assert.All(vms, v => Assert.Equal("running", v.Status));
            Assert.Contains("192.168.50.1/24", Addresses(netns, "kvmlab0"), StringComparison.Ordinal);
            // Both taps are ports of the bridge, in the namespace only.
            var ports = AgentProcess.Ip("-n", netns, "-o", "link", "show", "master", "kvmlab0");
            foreach (var vm in vms)
                Assert.Contains($"tap{vm.VmId}i0", ports, StringComparison.Ordinal);
            AssertNotOnTheHost("kvmlab0", $"tap{vms[0].VmId}i0", $"tap{vms[1].VmId}i0");
            var macs = tf.Outputs()["macs"]!["value"]!;
            foreach (var vm in vms)
            {
                var mac = (string)macs[vm.Name!]!;
                Assert.Matches("^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$", mac);
                Assert.Contains($"mac={mac}", File.ReadAllText($"/proc/{vm.Pid}/cmdline").Replace('\0', ' '), StringComparison.OrdinalIgnoreCase);
            }
            tf.AssertEmptyPlan();

            await StopAllAsync(agent);
            tf.Destroy();
            Assert.Empty(await agent.Client.ListVmsAsync());
            Assert.Empty(await agent.Client.ListNetworksAsync());
            Assert.DoesNotContain("kvmlab0", Links(netns), StringComparison.Ordinal);
            Assert.Equal(before, HostFiles.Files(data));
        }
        Assert.DoesNotContain(netns, AgentProcess.Ip("netns", "list"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_image_example_imports_an_image_and_boots_a_linked_clone()
    {
        using var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var source = Directory.CreateTempSubdirectory("kvm-tf-img-").FullName;
        try
        {
            var image = Path.Combine(source, "debian-12-genericcloud-amd64.qcow2");
            Run("qemu-img", "create", "-q", "-f", "qcow2", image, "256M");
            var sha256 = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(image)));
            // The agent downloads from inside its namespace, so the web server runs there too, on its loopback.
            using var server = NamespacedHttpServer.Start(agent.Netns!, source);
            var tf = Example("image", agent)
                .Var("image_url", $"http://127.0.0.1:{server.Port}/debian-12-genericcloud-amd64.qcow2")
                .Var("image_sha256", sha256);
            tf.Apply();

            Assert.Equal("qcow2", (string)tf.Outputs()["image_format"]!["value"]!);
            var vm = Assert.Single(await agent.Client.ListVmsAsync());
            Assert.Equal("running", vm.Status);
            var stored = (await agent.Client.GetImageAsync("default", "debian-12.qcow2")).Value;
            Assert.Equal([$"{vm.VmId}/virtio0"], stored.UsedBy!);
            // The VM's disk is a 20 GiB overlay whose backing file is the image.
            var disk = Path.Combine(data, "pools", "default", $"vm-{vm.VmId}-disk-virtio0.qcow2");
            var info = Run("qemu-img", "info", "-U", disk);
            Assert.Contains(stored.Path!, info, StringComparison.Ordinal);
            Assert.Contains("virtual size: 20 GiB", info, StringComparison.Ordinal);
            tf.AssertEmptyPlan();

            await StopAllAsync(agent);
            tf.Destroy();
            Assert.Empty(await agent.Client.ListVmsAsync());
            Assert.Empty(await agent.Client.ListImagesAsync());
            Assert.Equal(before, HostFiles.Files(data));
        }
        finally
        {
            Directory.Delete(source, recursive: true);
        }
    }

    [Fact]
    public async Task The_uefi_example_boots_ovmf_with_its_own_variable_store()
    {
        using var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        // The example boots an installer ISO an admin has put into the default pool.
        var iso = Path.Combine(data, "pools", "default", "installer.iso");
        await File.WriteAllBytesAsync(iso, new byte[2 << 20]);
        var tf = Example("uefi", agent);
        tf.Apply();

        var vm = Assert.Single(await agent.Client.ListVmsAsync());
        Assert.Equal("running", vm.Status);
        var cmdline = File.ReadAllText($"/proc/{vm.Pid}/cmdline").Replace('\0', ' ');
        Assert.Contains("OVMF_CODE_4M", cmdline, StringComparison.Ordinal);
        Assert.Contains(iso, cmdline, StringComparison.Ordinal);
        Assert.Contains("x86-64-v2-AES", tf.State("kvm_vm.uefi")["cpu"]!["model"]!.ToString(), StringComparison.Ordinal);
        // Its own copy of the 4m variable store template, next to its definition.
        var efivars = Path.Combine(data, "vms", $"{vm.VmId}.efivars.fd");
        Assert.Equal(new FileInfo("/usr/share/OVMF/OVMF_VARS_4M.fd").Length, new FileInfo(efivars).Length);
        tf.AssertEmptyPlan();

        await StopAllAsync(agent);
        tf.Destroy();
        Assert.Empty(await agent.Client.ListVmsAsync());
        Assert.False(File.Exists(efivars));
        File.Delete(iso);
        Assert.Equal(before, HostFiles.Files(data));
    }

    private static string Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {stderr}");
        return stdout.Result;
    }
}

/// <summary>
/// python3's http.server inside a test's network namespace, on its loopback, serving one directory. Started
/// with an argv array and stopped by its PID; the namespace's removal would take it too.
/// </summary>
public sealed class NamespacedHttpServer : IDisposable
{
    private readonly Process _process;

    private NamespacedHttpServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static NamespacedHttpServer Start(string netns, string directory)
    {
        // Any free port: the namespace's loopback has nothing else on it.
        var port = 18000 + RandomNumberGenerator.GetInt32(2000);
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "netns", "exec", netns, "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", directory, port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new NamespacedHttpServer(process, port);
        // Ready when something listens on the port inside the namespace.
        for (var i = 0; i < 100; i++)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"http.server in {netns} exited with {process.ExitCode}");
            if (AgentProcess.Ip("netns", "exec", netns, "ss", "-Hltn", $"sport = :{port}").Contains(':', StringComparison.Ordinal))
                return server;
            Thread.Sleep(100);
        }
        server.Dispose();
        throw new TimeoutException($"http.server in {netns} did not listen on {port}");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        _process.Dispose();
    }
}
