using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Kvm.Protocol.Grpc;
using Kvm.Pulumi.Provider;

namespace Kvm.Pulumi;

/// <summary>
/// pulumi-resource-kvm: started by the Pulumi engine with its own address as the argument;
/// prints only the port it listens on, serves pulumirpc.ResourceProvider over h2c on loopback,
/// and exits cleanly on SIGINT/SIGTERM (the engine's shutdown signal to the process group).
/// </summary>
internal static class Program
{
    // The engine waits 5 s after SIGINT before SIGKILL; leave room to finish writing.
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(2);

    private static async Task<int> Main(string[] args)
    {
        using var log = new EngineLog();
        log.Connect(EngineAddress(args));
        using var service = new ResourceProviderService(AgentBackend.Create, log);
        var router = service.Register(new GrpcRouter());

        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

        await using var server = await GrpcServer.StartAsync(router, new GrpcServerOptions { EndPoint = new IPEndPoint(IPAddress.Loopback, 0) }).ConfigureAwait(false);
        WritePort(((IPEndPoint)server.BoundEndPoint).Port);

        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Signalled.
        }
        service.Cancel();
        await server.StopAsync(StopGrace).ConfigureAwait(false);
        return 0;

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    // Written straight to fd 1, "\n" only: the engine reads up to the first newline and parses a port.
    private static void WritePort(int port)
    {
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(Encoding.ASCII.GetBytes(port.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n"));
        stdout.Flush();
    }

    /// <summary>
    /// The engine's address: the one positional argument, after the flags the engine may add
    /// (<c>--logtostderr</c>, <c>-v=N</c>, <c>--logflow</c>, <c>--tracing ENDPOINT</c>).
    /// </summary>
    internal static string? EngineAddress(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--tracing")
            {
                i++;
                continue;
            }
            if (arg.StartsWith('-'))
                continue;
            return arg;
        }
        return null;
    }
}
