using System.Buffers.Binary;
using System.Security.Cryptography;
using Kvm.Agent.GuestAgent;

namespace Kvm.Tests.Shared;

/// <summary>
/// What both providers' guest proofs use to look inside a real guest: a fresh SSH key for cloud-init to install, and
/// guest-exec through the agent's own QEMU guest agent client, retried while the guest (re)boots.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class GuestChecks
{
    /// <summary>A well-formed OpenSSH ed25519 public key line (random key material: nothing ever logs in with it).</summary>
    public static string Ed25519PublicKey()
    {
        var type = "ssh-ed25519"u8.ToArray();
        var blob = new byte[4 + type.Length + 4 + 32];
        BinaryPrimitives.WriteInt32BigEndian(blob, type.Length);
        type.CopyTo(blob, 4);
        BinaryPrimitives.WriteInt32BigEndian(blob.AsSpan(4 + type.Length), 32);
        RandomNumberGenerator.GetBytes(32).CopyTo(blob, 8 + type.Length);
        return "ssh-ed25519 " + Convert.ToBase64String(blob) + " proof@kvm";
    }

    /// <summary>
    /// Waits until cloud-init has finished in the guest and returns what <c>cloud-init status --long</c> said. Finished
    /// includes <c>error</c>: the test guest has no locales, so cloud-init's locale module fails on it, which says nothing
    /// about the seed; the callers check what the seed asked for (host name, user, key, files) themselves.
    /// </summary>
    public static async Task<string> WaitForCloudInitAsync(GuestAgents guest, long vmId, TimeSpan within)
    {
        var status = await ExecUntilAsync(guest, vmId, within,
            r => r.StdOut.Contains("status: done", StringComparison.Ordinal) || r.StdOut.Contains("status: error", StringComparison.Ordinal)
                 || r.StdOut.Contains("status: disabled", StringComparison.Ordinal),
            "/usr/bin/cloud-init", "status", "--wait", "--long");
        return status.StdOut;
    }

    /// <summary>Runs <paramref name="argv"/> in the guest until <paramref name="done"/> accepts the result.</summary>
    public static async Task<GuestExecResult> ExecUntilAsync(GuestAgents guest, long vmId, TimeSpan within, Func<GuestExecResult, bool> done, params string[] argv)
    {
        var deadline = DateTime.UtcNow + within;
        GuestExecResult? last = null;
        Exception? error = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await guest.ExecAsync(vmId, argv[0], argv[1..], TimeSpan.FromMinutes(10));
                if (done(last))
                    return last;
            }
            catch (Exception e) when (e is TimeoutException or IOException or QgaException)
            {
                error = e; // The guest is (re)booting: its agent is not up yet.
            }
            await Task.Delay(TimeSpan.FromSeconds(3));
        }
        throw new TimeoutException($"{string.Join(' ', argv)} in the guest: last result {last}, last error {error?.Message}");
    }
}
