using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Kvm.Agent;
using Kvm.Agent.GuestAgent;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;
using Kvm.Tests.Shared;
using Xunit.Abstractions;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// Issue 5's proof on a real Linux guest through the engine harness and the real pulumi-resource-kvm (the Terraform
/// twin is Kvm.Terraform.Tests' RealTerraform.GuestProofTests): inside a network namespace of the test's own, a DHCP
/// network, a Debian image imported from a loopback URL, and a VM with cloud-init and waitForIp. The up returns the
/// address DHCP gave; the guest agent confirms what cloud-init did; a userData change is an in-place update that
/// re-provisions the running guest; destroy leaves the host exactly as the Terraform run does (<see cref="HostLeftovers"/>).
/// Guests run under TCG: minutes, not seconds.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class GuestProofTests(ITestOutputHelper output)
{
    private const string NetworkToken = "kvm:index/network:Network";
    private const string ImageToken = "kvm:index/image:Image";
    private const string VmToken = "kvm:index/vm:Vm";
    private const string Password = "proof-Passw0rd";

    private static Goal Network() => new(NetworkToken, "lab", _ => StructCodecTests.Parse("""
        {"name":"kvmproof0","address":"192.168.61.1/24",
         "dhcp":{"rangeStart":"192.168.61.100","rangeEnd":"192.168.61.150"},"dns":{"domain":"lab.test"} }
        """));

    private static Goal Image(string url, string sha256) => new(ImageToken, "debian", _ => StructCodecTests.Parse($$"""
        {"name":"debian-proof.qcow2","url":"{{url}}","checksum":"{{sha256}}"}
        """));

    private static string UserData(string marker) => $"#cloud-config\nwrite_files:\n  - path: /etc/kvm-proof\n    content: {marker}\n";

    // The VM reads the image's id and the network's name from their outputs, as Output<T>s do in a program.
    private static Goal Guest(DebianGuestFiles debian, string sshKey, string marker) => new(VmToken, "guest", outputs =>
    {
        var inputs = new JsonObject
        {
            ["name"] = "proof-guest",
            ["cpu"] = new JsonObject { ["cores"] = 2 },
            ["memory"] = new JsonObject { ["sizeMib"] = 1024 },
            ["kernel"] = debian.Kernel,
            ["initrd"] = debian.Initrd,
            ["cmdline"] = debian.Cmdline,
            ["disks"] = new JsonObject { ["virtio0"] = new JsonObject { ["linkedClone"] = true } },
            ["networkInterfaces"] = new JsonObject { ["net0"] = new JsonObject() },
            ["agent"] = new JsonObject { ["enabled"] = true },
            ["cloudInit"] = new JsonObject
            {
                ["hostname"] = "pulumi-proof",
                ["user"] = new JsonObject { ["name"] = "lab", ["sshKeys"] = new JsonArray(sshKey), ["password"] = Password },
                ["userData"] = UserData(marker),
                ["onChange"] = "reprovision",
            },
            ["waitForIp"] = new JsonObject { ["timeoutSeconds"] = 1200 },
            ["updatePolicy"] = new JsonObject { ["shutdownTimeoutSeconds"] = 60 },
        };
        var goal = StructCodecTests.Parse(inputs.ToJsonString());
        goal.Fields["disks"].StructValue.Fields["virtio0"].StructValue.Fields["imageId"] = outputs("debian", "imageId");
        goal.Fields["networkInterfaces"].StructValue.Fields["net0"].StructValue.Fields["bridge"] = outputs("lab", "name");
        return goal;
    });

    private static Value Field(Struct outputs, params string[] path)
    {
        var value = Value.ForStruct(outputs);
        foreach (var name in path)
            value = Unwrapped(value).StructValue.Fields[name];
        return value;
    }

    private static bool IsSecret(Value value) =>
        value.KindCase == Value.KindOneofCase.StructValue
        && value.StructValue.Fields.TryGetValue(Sentinels.SignatureKey, out var signature)
        && signature.StringValue == Sentinels.SecretSignature;

    private static Value Unwrapped(Value value) => IsSecret(value) ? value.StructValue.Fields["value"] : value;

    private static void AssertSecret(string expected, Value value)
    {
        Assert.True(IsSecret(value), $"expected a secret, got {value}");
        Assert.Equal(expected, value.StructValue.Fields["value"].StringValue);
    }

    private static string Text(Struct outputs, params string[] path) => Unwrapped(Field(outputs, path)).StringValue;

    [Fact]
    public async Task ADebianGuestComesUpReadyWithItsDhcpAddressAndCloudInitAndIsReprovisionedInPlace()
    {
        var debian = DebianGuestFiles.Find(Repo.Root);
        string netns;
        using (var agent = await AgentProcess.StartInNamespaceAsync(Repo.Root))
        {
            netns = agent.Netns!;
            var sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(File.OpenRead(debian.Disk)));
            var sshKey = GuestChecks.Ed25519PublicKey();
            var guest = new GuestAgents(new AgentOptions { RunDir = agent.RunDirectory });
            using var files = await NamespaceFileServer.StartAsync(netns, debian.Directory);
            var image = Image(files.UrlOf("disk.qcow2"), sha256);

            await using var session = await EngineSession.StartAsync();
            await session.ConfigureAsync(EngineSession.Config(agent.Endpoint, agent.Token));
            var deployment = new Deployment(session);

            // Preview: three creates whose computed outputs are unknown (the VM's disk sees the image id as unknown),
            // and nothing made.
            Assert.Equal(["create", "create", "create"], (await deployment.PreviewAsync([Network(), image, Guest(debian, sshKey, "one")])).Select(s => s.Op));
            var planned = deployment.LastOutputs;
            Assert.Equal(Sentinels.Unknown, planned["debian"].Fields["imageId"].StringValue);
            Assert.Equal(Sentinels.Unknown, planned["guest"].Fields["primaryIpv4"].StringValue);
            Assert.Equal(Sentinels.Unknown, planned["guest"].Fields["vmId"].StringValue);
            Assert.Equal(Sentinels.Unknown, Text(planned["guest"], "disks", "virtio0", "imageId"));
            AssertSecret(UserData("one"), Field(planned["guest"], "cloudInit", "userData"));
            Assert.Empty(await agent.Client.ListVmsAsync());
            Assert.Empty(await agent.Client.ListNetworksAsync());
            Assert.Empty(await agent.Client.ListImagesAsync());
            Assert.Equal(new[] { agent.Pid, files.Pid }.Order(), agent.NamespacePids().Order());

            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(["create", "create", "create"], (await deployment.UpAsync([Network(), image, Guest(debian, sshKey, "one")])).Select(s => s.Op));
            output.WriteLine($"up with waitForIp: {clock.Elapsed.TotalSeconds:0} s");

            // The up returned the address the network's DHCP handed out.
            var outputs = deployment["guest"].Outputs;
            var ip = Text(outputs, "primaryIpv4");
            output.WriteLine($"primaryIpv4 = {ip}");
            var bytes = IPAddress.Parse(ip).GetAddressBytes();
            Assert.Equal([192, 168, 61], bytes[..3]);
            Assert.InRange(bytes[3], 100, 150);
            var vmId = long.Parse(deployment["guest"].Id, CultureInfo.InvariantCulture);
            var mac = Text(outputs, "macAddresses", "net0");
            var leases = await File.ReadAllTextAsync(Text(deployment["lab"].Outputs, "leaseFile"));
            Assert.Contains(mac, leases, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(ip, leases, StringComparison.Ordinal);
            Assert.Equal($"default/debian-proof.qcow2", Text(outputs, "disks", "virtio0", "imageId"));

            // userData and the password are secret outputs; the agent never answers them in clear.
            AssertSecret(UserData("one"), Field(outputs, "cloudInit", "userData"));
            AssertSecret(Password, Field(outputs, "cloudInit", "user", "password"));
            var answered = await agent.Client.Http.GetStringAsync($"v1/vms/{vmId}");
            Assert.DoesNotContain("kvm-proof", answered, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, answered, StringComparison.Ordinal);

            // The guest agent confirms what cloud-init did: host name, the user's authorized key, userData's file.
            output.WriteLine(await GuestChecks.WaitForCloudInitAsync(guest, vmId, TimeSpan.FromMinutes(15)));
            var info = JsonNode.Parse(await agent.Client.Http.GetStringAsync($"v1/vms/{vmId}/agent"))!;
            Assert.Equal("pulumi-proof", info["hostname"]!.GetValue<string>());
            var keys = await guest.ExecAsync(vmId, "/bin/cat", ["/home/lab/.ssh/authorized_keys"], TimeSpan.FromSeconds(60));
            Assert.Contains(sshKey, keys.StdOut, StringComparison.Ordinal);
            Assert.Equal("one", (await guest.ExecAsync(vmId, "/bin/cat", ["/etc/kvm-proof"], TimeSpan.FromSeconds(60))).StdOut.Trim());
            Assert.Equal(["same", "same", "same"], (await deployment.PreviewAsync([Network(), image, Guest(debian, sshKey, "one")])).Select(s => s.Op));

            // A userData change is an in-place update: the seed is swapped, the guest re-provisioned, QEMU never restarted.
            var pid = Field(outputs, "pid").NumberValue;
            var instance = Text(outputs, "cloudInitInstanceId");
            var changed = Guest(debian, sshKey, "two");
            Assert.Equal(["same", "same", "update"], (await deployment.PreviewAsync([Network(), image, changed])).Select(s => s.Op));
            Assert.Equal(["same", "same", "update"], (await deployment.UpAsync([Network(), image, changed])).Select(s => s.Op));
            Assert.DoesNotContain(deployment.Calls, c => c.StartsWith("Create", StringComparison.Ordinal) || c.StartsWith("Delete", StringComparison.Ordinal));
            outputs = deployment["guest"].Outputs;
            Assert.Equal(vmId.ToString(CultureInfo.InvariantCulture), deployment["guest"].Id);
            Assert.Equal(pid, Field(outputs, "pid").NumberValue);
            Assert.Equal((long)pid, (await agent.Client.GetVmAsync(vmId)).Value.Pid);
            Assert.NotEqual(instance, Text(outputs, "cloudInitInstanceId"));
            AssertSecret(UserData("two"), Field(outputs, "cloudInit", "userData"));
            var reprovisioned = await GuestChecks.ExecUntilAsync(guest, vmId, TimeSpan.FromMinutes(15), r => r.StdOut.Trim() == "two", "/bin/cat", "/etc/kvm-proof");
            Assert.Equal("two", reprovisioned.StdOut.Trim());

            // Refresh finds no drift, keeps the secrets secret, and the program still matches.
            await deployment.RefreshAsync();
            Assert.Equal(["refresh", "refresh", "refresh"], deployment.Steps.Select(s => s.Op));
            AssertSecret(UserData("two"), Field(deployment["guest"].Outputs, "cloudInit", "userData"));
            AssertSecret(Password, Field(deployment["guest"].Outputs, "cloudInit", "user", "password"));
            Assert.Equal(["same", "same", "same"], (await deployment.PreviewAsync([Network(), image, changed])).Select(s => s.Op));

            // Destroy, in reverse order, leaves exactly what the Terraform proof's destroy leaves: nothing.
            await deployment.DestroyAsync();
            Assert.Equal(["guest", "debian", "lab"], deployment.Steps.Select(s => s.Resource));
            Assert.Empty(deployment.State);
            await HostLeftovers.AssertNothingLeftAsync(agent, files.Pid);
        }
        HostLeftovers.AssertNamespaceGone(netns);
    }
}
