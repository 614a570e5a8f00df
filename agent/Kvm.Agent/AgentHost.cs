using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Kvm.Agent.Host;
using Kvm.Agent.Http;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Agent.Vms;
using Kvm.Model;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Kvm.Agent;

/// <summary>
/// A running agent: the slim Kestrel host with the features of <see cref="Features"/>. <c>Program</c> runs one;
/// tests start several on loopback port 0 with temp directories. Disposing it stops the HTTP server and the
/// QMP watchers, never a VM.
/// </summary>
public sealed class AgentHost : IAsyncDisposable
{
    private AgentHost(WebApplication app, Uri baseAddress, string token)
    {
        App = app;
        BaseAddress = baseAddress;
        Token = token;
    }

    /// <summary>The ASP.NET Core application (its services, its endpoint data source).</summary>
    public WebApplication App { get; }

    /// <summary>Where the agent listens, e.g. http://127.0.0.1:41234/ or unix:///run/kvm-agent/agent.sock.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The bearer token clients must send.</summary>
    public string Token { get; }

    /// <summary>The agent's services.</summary>
    public IServiceProvider Services => App.Services;

    /// <summary>Probes the host, loads and adopts VMs, and starts listening.</summary>
    public static async Task<AgentHost> StartAsync(AgentOptions options, Action<IServiceCollection>? configureServices = null, CancellationToken cancellationToken = default)
    {
        options = options.Checked();
        Directory.CreateDirectory(options.DataDir);
        Directory.CreateDirectory(options.RunDir);
        var (token, generatedTokenFile) = BearerToken.Resolve(options);
        if (options.Listen is UnixDomainSocketEndPoint unix)
            UnixListener.ClaimSocketPath(unix.ToString());
        var facts = await HostProbe.ProbeAsync(new CommandRunner(), "qemu-system-x86_64", options.Accel, cancellationToken: cancellationToken);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "kvm-agent", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.Listen(options.Listen, listen =>
            {
                if (options.TlsCert is { } cert)
                    listen.UseHttps(X509Certificate2.CreateFromPemFile(cert, options.TlsKey), https => https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13);
            });
        });
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            // Responses use the model's contract exactly as Kvm.Client reads it (ModelJson).
            json.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            json.SerializerOptions.TypeInfoResolver = JsonTypeInfoResolver.Combine(ModelJsonContext.Default, new DefaultJsonTypeInfoResolver());
        });
        builder.Services.Configure<RouteHandlerOptions>(routes => routes.ThrowOnBadRequest = true);
        builder.Services.AddSingleton(options);
        if (options.StopVmsOnExit) // the ordered shutdown may take long: systemd's TimeoutStopSec bounds it, not the host
            builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromHours(2));
        builder.Services.AddSingleton(facts);
        builder.Services.AddSingleton<ICommandRunner, CommandRunner>();
        Features.Add(builder.Services, options);
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        Features.Map(app, token);
        await Features.PrepareAsync(app, cancellationToken);
        await app.StartAsync(cancellationToken);

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Kvm.Agent");
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        if (generatedTokenFile is not null)
            Log.TokenGenerated(logger, generatedTokenFile);
        Log.Listening(logger, address, options.DataDir, options.RunDir, facts.DefaultAccelerator);
        Uri uri;
        if (options.Listen is UnixDomainSocketEndPoint socket)
        {
            // The socket carries the same bearer-token API; the file mode keeps other local users from even connecting.
            File.SetUnixFileMode(socket.ToString(), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            uri = new Uri("unix://" + socket);
        }
        else
        {
            uri = new Uri(address.Replace("[::]", "[::1]", StringComparison.Ordinal).Replace("0.0.0.0", IPAddress.Loopback.ToString(), StringComparison.Ordinal) + "/");
        }
        return new AgentHost(app, uri, token);
    }

    /// <summary>Runs until SIGTERM/SIGINT.</summary>
    public Task WaitForShutdownAsync() => App.WaitForShutdownAsync();

    /// <summary>Stops serving; VMs keep running.</summary>
    public async ValueTask DisposeAsync()
    {
        await App.StopAsync(TimeSpan.FromSeconds(5));
        await App.DisposeAsync();
    }
}

/// <summary>Registration and start-up of the VM feature.</summary>
public static class VmFeature
{
    /// <summary>VM store, locks, runtime and operations; the store also answers which VMs use which volumes.</summary>
    public static IServiceCollection AddVms(this IServiceCollection services)
    {
        services.AddSingleton<VmStore>();
        services.AddSingleton<IVolumeUsage>(sp => sp.GetRequiredService<VmStore>());
        services.AddSingleton<Kvm.Agent.Images.IImageUsage>(sp => sp.GetRequiredService<VmStore>());
        services.AddSingleton<VmLocks>();
        services.AddSingleton(sp => new Kvm.Agent.Cgroups.VmCgroups(sp.GetRequiredService<AgentOptions>().CgroupRoot, sp.GetRequiredService<AgentOptions>().CgroupParent));
        services.AddSingleton<VmRuntime>();
        services.AddSingleton<IOnlineResizer>(sp => sp.GetRequiredService<VmRuntime>());
        services.AddSingleton<IHostDeviceUsage>(sp => sp.GetRequiredService<VmRuntime>());
        services.AddSingleton<VmOperations>();
        services.AddSingleton<VmClones>();
        services.AddSingleton<AutoBalloon>();
        services.AddHostedService(sp => sp.GetRequiredService<AutoBalloon>());
        services.AddSingleton<Kvm.Agent.CloudInit.CloudInitSeeds>();
        services.AddSingleton<Kvm.Agent.Tpm.Swtpm>();
        services.AddSingleton<Autostart>();
        services.AddHostedService(sp => sp.GetRequiredService<Autostart>());
        return services;
    }

    /// <summary>Loads VM definitions and adopts the QEMUs still running, before the first request is served.</summary>
    public static async Task LoadVmsAsync(this WebApplication app, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Kvm.Agent.Vms");
        var count = app.Services.GetRequiredService<VmStore>().Load(logger);
        var running = await app.Services.GetRequiredService<VmRuntime>().AdoptAllAsync(cancellationToken);
        Log.Loaded(logger, count, running, clock.ElapsedMilliseconds);
    }
}
