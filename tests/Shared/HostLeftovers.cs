namespace Kvm.Tests.Shared;

/// <summary>
/// What a destroyed deployment leaves on the host: nothing. The Terraform and the Pulumi guest proofs both end with
/// these same checks, so a destroy through either provider is shown to leave the host in the same state.
/// </summary>
public static class HostLeftovers
{
    /// <summary>
    /// No VM, network or image at the agent; in its namespace no process but the agent and <paramref name="allowedPids"/>
    /// (QEMU, dnsmasq gone) and no link but <c>lo</c> (bridge and taps gone); in its data directory no disk, ISO, lease file,
    /// pidfile, cloud-init seed or TPM state; in its run directory no pidfile or socket but the agent's own.
    /// </summary>
    public static async Task AssertNothingLeftAsync(AgentProcess agent, params int[] allowedPids)
    {
        Assert.Empty(await agent.Client.ListVmsAsync());
        Assert.Empty(await agent.Client.ListNetworksAsync());
        Assert.Empty(await agent.Client.ListImagesAsync());
        if (agent.Netns is { } netns)
        {
            Assert.Equal(allowedPids.Append(agent.Pid).Order(), agent.NamespacePids().Order());
            Assert.Equal(["lo"], AgentProcess.Ip("-n", netns, "-o", "link", "show").Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(':')[1].Trim()));
        }
        var files = Directory.EnumerateFiles(agent.DataDirectory, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".qcow2", StringComparison.Ordinal) || f.EndsWith(".iso", StringComparison.Ordinal) ||
                        f.EndsWith(".leases", StringComparison.Ordinal) || f.EndsWith(".pid", StringComparison.Ordinal) ||
                        Path.GetRelativePath(agent.DataDirectory, f).Contains("seed", StringComparison.Ordinal))
            .ToList();
        Assert.Empty(files);
        // TPM state lives with its VM and goes with it.
        var tpm = Path.Combine(agent.DataDirectory, "tpm");
        Assert.Empty(Directory.Exists(tpm) ? Directory.EnumerateFileSystemEntries(tpm) : []);
        // The run directory held QEMU's and dnsmasq's pidfiles and the QMP and guest agent sockets: only the agent's own socket stays.
        var run = Directory.EnumerateFiles(agent.RunDirectory, "*", SearchOption.AllDirectories)
            .Where(f => f != Path.Combine(agent.RunDirectory, "agent.sock"))
            .ToList();
        Assert.Empty(run);
    }

    /// <summary>After the agent is disposed: its network namespace is gone too.</summary>
    public static void AssertNamespaceGone(string netns) =>
        Assert.DoesNotContain(netns, AgentProcess.Ip("netns", "list"), StringComparison.Ordinal);
}
