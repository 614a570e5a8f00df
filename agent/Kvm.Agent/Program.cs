using Kvm.Agent;
using Kvm.Agent.Addresses;
using Kvm.Agent.Host;
using Kvm.Agent.Http;
using Kvm.Agent.Images;
using Kvm.Agent.Migration;
using Kvm.Agent.Networks;
using Kvm.Agent.Snapshots;
using Kvm.Agent.Storage;
using Kvm.Agent.Vms;

// kvm-agent: one per hypervisor host. VMs outlive it; a restarted agent adopts them.
if (args is ["--help" or "-h"]) { Console.WriteLine(AgentOptions.Usage); return 0; }
AgentOptions options;
try { options = AgentOptions.Parse(args, Environment.GetEnvironmentVariable); }
catch (ArgumentException e) { Console.Error.WriteLine($"kvm-agent: {e.Message}\n{AgentOptions.Usage}"); return 2; }
await using var agent = await AgentHost.StartAsync(options);
await agent.WaitForShutdownAsync();
return 0;

/// <summary>The agent's table of contents: its features, and the order requests meet them.</summary>
public static class Features
{
    /// <summary>Services of every feature.</summary>
    public static void Add(IServiceCollection services, AgentOptions options)
    {
        services.AddVms();                                                     // definitions, QEMU processes, power actions
        services.AddStorage(new StorageOptions { DataDir = options.DataDir }); // pools, volumes, inline disks, EFI stores
        services.AddImages();                                                  // read-only base images imported from URLs or host files
        services.AddNetworking(new NetworkOptions { DataDir = options.DataDir, RunDir = options.RunDir, AllowHostNat = options.AllowHostNat }); // bridges, taps, dnsmasq, NAT
        services.AddGuestAddresses();                                          // QEMU guest agents, DHCP leases, neighbours → addresses
        services.AddSnapshots();                                               // qcow2 internal snapshots of VMs, rollback
        services.AddMigration();                                               // VMs moved to and from other agents, live or cold
    }

    /// <summary>Middleware, then endpoints.</summary>
    public static void Map(WebApplication app, string token)
    {
        app.UseAgentProblems();    // every failure is RFC 9457 problem JSON
        app.UseBearerToken(token); // /v1/** needs the token; /healthz does not
        app.MapHost();             // /healthz, /v1/host
        app.MapVms();              // /v1/vms, power actions
        app.MapStorage();          // /v1/storage-pools, /v1/volumes
        app.MapImages();           // /v1/images
        app.MapNetworks();         // /v1/networks
        app.MapGuestAddresses();   // /v1/vms/{vm_id}/addresses, /v1/vms/{vm_id}/agent
        app.MapSnapshots();        // /v1/vms/{vm_id}/snapshots, rollback
        app.MapMigration();        // /v1/vms/{vm_id}/migration/*, /v1/migrations/incoming
    }

    /// <summary>Work before the first request: load definitions, adopt running VMs.</summary>
    public static async Task PrepareAsync(WebApplication app, CancellationToken cancellationToken)
    {
        await app.LoadVmsAsync(cancellationToken);
        await app.Services.GetRequiredService<Migrations>().AbortLeftoversAsync(cancellationToken); // incoming VMs a previous agent did not complete
        await app.Services.GetRequiredService<Bridges>().AdoptServicesAsync(cancellationToken); // dnsmasqs outlive the agent too
        app.Services.GetRequiredService<Autostart>().StartInBackground();                        // onboot VMs, in order, once bridges are up
    }
}
