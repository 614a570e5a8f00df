using System.Net.Sockets;

namespace Kvm.Agent.Http;

/// <summary>The agent's unix-socket listener: the socket file is the agent's own, one agent per path.</summary>
public static class UnixListener
{
    /// <summary>
    /// Makes <paramref name="path"/> free for a new listening socket: a stale socket left by an agent that died is
    /// removed; a socket another agent still answers on, or any file that is not a socket, is refused.
    /// </summary>
    public static void ClaimSocketPath(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!Path.Exists(path) && new FileInfo(path).LinkTarget is null)
            return;
        if (!Kvm.Agent.Host.Posix.IsSocket(path))
            throw new ArgumentException($"--listen: \"{path}\" exists and is not a socket; the agent leaves it alone.");
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new ArgumentException($"--listen: another process is listening on \"{path}\".");
            }
            catch (SocketException)
            {
                // Nobody answers: a stale socket from an agent that is gone.
            }
        }
        File.Delete(path);
    }
}
