using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Agent.GuestAgent;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Tests.Shared;
using Xunit.Abstractions;

namespace Kvm.Agent.Tests.GuestAgent;

/// <summary>
/// The QEMU guest agent end to end: the real kvm-agent binary boots the real Debian test guest under TCG (one boot: each
/// costs about a minute on two busy cores), and the guest agent, the addresses lookup, wait_for_ip and graceful shutdown are
/// checked against what the guest really does. A guest without a guest agent shows how wait_for_ip fails.
/// </summary>
[Collection("qemu")]
public sealed class DebianGuestTests(ITestOutputHelper output)
{
    private sealed class OneAgent(KvmClient client) : IAgentClients
    {
        public KvmClient For(string host) => client;
    }

    [Fact]
    public async Task TheDebianGuestAnswersThroughItsGuestAgentReportsItsAddressAndShutsDownThroughIt()
    {
        using var agent = await AgentProcess.StartAsync(DebianGuest.RepoRoot);
        var client = agent.Client;
        var image = (await client.CreateImageAsync(new ImageSpec { Name = "debian-guest.qcow2", SourcePath = DebianGuest.Disk })).Value;
        var spec = DebianGuest.Spec(Specs.UniqueName("deb"), image.ImageId!);
        spec.Agent = new AgentSpec { Enabled = true };
        spec.WaitForIp = new WaitForIpSpec { TimeoutSeconds = 300 };

        // Create through the providers' shared lifecycle: it returns only once wait_for_ip saw the address.
        var clock = Stopwatch.StartNew();
        var created = await new VmOperations(new OneAgent(client)).CreateAsync("", (JsonObject)JsonSerializer.SerializeToNode(spec, ModelJsonContext.Default.VmSpec)!, default);
        var booted = clock.Elapsed;
        output.WriteLine($"create → IPv4 seen (TCG boot to guest agent and DHCP): {booted.TotalSeconds:0.0} s");
        var vmId = created["vm_id"]!.GetValue<long>();
        // User-mode networking: QEMU's DHCP hands out 10.0.2.15, and only the guest agent can tell.
        Assert.Equal("10.0.2.15", created["primary_ipv4"]?.GetValue<string>());
        Assert.Equal("10.0.2.15", created["ipv4_addresses"]!["net0"]![0]!.GetValue<string>());

        // guest-info, guest-get-host-name, guest-get-osinfo through the agent's API.
        var info = JsonNode.Parse(await client.Http.GetStringAsync($"v1/vms/{vmId}/agent"))!;
        output.WriteLine(info.ToJsonString());
        Assert.Equal("kvm-guest", info["hostname"]!.GetValue<string>());
        Assert.Contains("Debian", info["os_name"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(info["agent_version"]?.GetValue<string>()));
        Assert.Contains("guest-network-get-interfaces", info["supported_commands"]!.AsArray().Select(c => c!.GetValue<string>()));

        // The addresses lookup: the guest agent's interface matched to net0 by MAC; the other sources say why they do not apply.
        var addresses = await client.GetVmAddressesAsync(vmId);
        var net0 = Assert.Single(addresses.Interfaces!);
        Assert.Equal("net0", net0.Slot);
        Assert.Equal(addresses.MacAddresses!["net0"], net0.Mac);
        Assert.StartsWith("en", net0.GuestName, StringComparison.Ordinal);
        Assert.Contains("10.0.2.15", net0.Ipv4!);
        Assert.Equal(["agent"], net0.Sources!);
        Assert.DoesNotContain(net0.Ipv6!, ip => ip.StartsWith("fe80:", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(["agent:ok", "lease:skipped", "neighbor:skipped"], addresses.Sources!.Select(s => $"{s.Name}:{s.Status}"));
        var lookup = await new VmAddressesLookup(new OneAgent(client)).ReadAsync("", new JsonObject { ["vm_id"] = vmId }, default);
        Assert.Equal("10.0.2.15", lookup["primary_ipv4"]!.GetValue<string>());
        Assert.Equal("10.0.2.15", (await client.GetVmAsync(vmId)).Value.PrimaryIpv4);

        // freeze / thaw / status / trim straight on the guest agent socket the VM's QEMU serves in the agent's run directory.
        var guest = new GuestAgents(new AgentOptions { RunDir = agent.RunDirectory });
        Assert.True(await guest.PingAsync(vmId));
        Assert.True(await guest.FreezeAsync(vmId) >= 1);
        Assert.Equal("frozen", await guest.FreezeStatusAsync(vmId));
        Assert.True(await guest.ThawAsync(vmId) >= 1);
        Assert.Equal("thawed", await guest.FreezeStatusAsync(vmId));
        var trimmed = await guest.TrimAsync(vmId);
        Assert.Contains("\"/\"", trimmed!.ToJsonString(), StringComparison.Ordinal);

        // Make the guest ignore the ACPI power button, so only guest-shutdown can power it off.
        var ignore = await guest.ExecAsync(vmId, "/bin/sh", ["-c",
            "mkdir -p /etc/systemd/logind.conf.d && printf '[Login]\\nHandlePowerKey=ignore\\n' > /etc/systemd/logind.conf.d/ignore.conf && systemctl restart systemd-logind"],
            TimeSpan.FromSeconds(60));
        Assert.True(ignore.ExitCode == 0, ignore.StdErr);

        // Control: with use_for_shutdown off the agent presses the (now ignored) power button, and the guest stays up.
        var current = (await client.GetVmAsync(vmId)).Value.ToSpec();
        current.Agent!.UseForShutdown = false;
        await client.UpdateVmAsync(vmId, current);
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => client.ShutdownVmAsync(vmId, TimeSpan.FromSeconds(15), force: false));
        Assert.Equal(ProblemTypes.InvalidState, refused.Type);
        Assert.Equal("running", (await client.GetVmAsync(vmId)).Value.Status);

        // With it on (the default), the shutdown goes through guest-shutdown and the guest powers off on its own.
        current.Agent.UseForShutdown = null;
        await client.UpdateVmAsync(vmId, current);
        clock.Restart();
        var stopped = await client.ShutdownVmAsync(vmId, TimeSpan.FromSeconds(300), force: false);
        output.WriteLine($"guest-shutdown → QEMU exited: {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal("stopped", stopped.Status);
        Assert.Null(stopped.PrimaryIpv4); // addresses are only reported for the run they were seen in

        // A stopped VM: every source is skipped, nothing waits.
        clock.Restart();
        var idle = await client.GetVmAddressesAsync(vmId);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2));
        Assert.All(idle.Sources!, s => Assert.Equal("skipped", s.Status));
        Assert.Empty(idle.Ipv4Addresses!["net0"]);
    }

    [Fact]
    public async Task WaitForIpOnAGuestWithoutAGuestAgentTimesOutNamingEverySourceTried()
    {
        using var agent = await AgentProcess.StartAsync(DebianGuest.RepoRoot);
        var client = agent.Client;
        // The busybox test guest runs no qemu-guest-agent, though its VM has the channel; net0 is user-mode (no leases, no neighbours).
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("noga"),
            Kvm = false,
            Memory = new MemorySpec { SizeMib = 256 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Kernel = TestGuest.Kernel,
            Initrd = TestGuest.Initrd,
            Cmdline = "console=ttyS0",
            NetworkInterfaces = new() { ["net0"] = new NicSpec() },
            Agent = new AgentSpec { Enabled = true },
            WaitForIp = new WaitForIpSpec { TimeoutSeconds = 5 },
        };
        var clock = Stopwatch.StartNew();
        var failed = await Assert.ThrowsAsync<PartialCreateException>(() =>
            new VmOperations(new OneAgent(client)).CreateAsync("", (JsonObject)JsonSerializer.SerializeToNode(spec, ModelJsonContext.Default.VmSpec)!, default));
        output.WriteLine(failed.InnerException!.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the bounded wait took {clock.Elapsed}");
        var timeout = Assert.IsType<WaitForIpTimeoutException>(failed.InnerException);
        Assert.Contains("no IPv4 address on net0 within 5 s", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("agent: unavailable (the guest agent did not answer", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("lease: skipped (no network interface is on a managed network", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("neighbor: skipped (no network interface is on a bridge", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("Addresses seen: net0: none", timeout.Message, StringComparison.Ordinal);
        // The VM was created and stays tracked (the plugins record it and report the failure).
        var vmId = failed.Created["vm_id"]!.GetValue<long>();
        Assert.Equal("running", (await client.GetVmAsync(vmId)).Value.Status);

        // Each lookup stays bounded by the guest agent's short timeout, and the guest agent endpoint says why it has nothing.
        clock.Restart();
        Assert.Equal("unavailable", (await client.GetVmAddressesAsync(vmId)).Sources!.Single(s => s.Name == "agent").Status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"one lookup took {clock.Elapsed}");
        using var response = await client.Http.GetAsync($"v1/vms/{vmId}/agent");
        Assert.Equal(System.Net.HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("did not answer", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
