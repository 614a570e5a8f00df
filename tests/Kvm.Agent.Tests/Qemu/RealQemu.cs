using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Kvm.Agent.Host;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>Locates the real QEMU tools; tests that need them skip, saying why, when they are missing.</summary>
internal static class RealQemu
{
    public static string? System { get; } = Which("qemu-system-x86_64");
    public static string? Img { get; } = Which("qemu-img");

    public static string? MissingReason =>
        System is null ? "qemu-system-x86_64 is not on PATH (install qemu-system-x86)" :
        Img is null ? "qemu-img is not on PATH (install qemu-utils)" : null;

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Join(d, name)).FirstOrDefault(File.Exists);

    public static CommandResult Run(IReadOnlyList<string> argv, TimeSpan timeout)
    {
        using var process = Start(argv);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill();
            process.WaitForExit();
            throw new TimeoutException($"{argv[0]} did not finish within {timeout}.");
        }
        return new CommandResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    public static Process Start(IReadOnlyList<string> argv)
    {
        var info = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in argv.Skip(1))
            info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }
}

/// <summary>The probe's runner for tests: Process directly (the agent's real runner lives elsewhere).</summary>
internal sealed class TestCommandRunner : ICommandRunner
{
    public Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Task.Run(() => RealQemu.Run(argv, timeout), cancellationToken);

    public int SpawnDetached(IReadOnlyList<string> argv, string logPath) => throw new NotSupportedException();
}

/// <summary>A minimal QMP client: one command at a time, every read bounded.</summary>
internal sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly Stream _stream;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false) { ReadTimeout = 10_000, WriteTimeout = 10_000 };
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    public static QmpClient Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        var client = new QmpClient(socket);
        var greeting = client.ReadMessage();
        if (greeting["QMP"] is null)
            throw new InvalidDataException("no QMP greeting: " + greeting.ToJsonString());
        client.Execute("qmp_capabilities");
        return client;
    }

    public JsonNode? Execute(string command, JsonObject? arguments = null)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
            request["arguments"] = arguments;
        var bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        _stream.Write(bytes);
        while (true)
        {
            var message = ReadMessage();
            if (message["error"] is { } error)
                throw new InvalidOperationException($"QMP {command}: {error.ToJsonString()}");
            if (message.ContainsKey("return"))
                return message["return"];
        }
    }

    private JsonObject ReadMessage()
    {
        var line = _reader.ReadLine() ?? throw new EndOfStreamException("QMP closed the connection.");
        return JsonNode.Parse(line)!.AsObject();
    }

    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
        _socket.Dispose();
    }
}
