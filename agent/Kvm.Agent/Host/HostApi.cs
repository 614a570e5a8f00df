using System.Reflection;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kvm.Agent.Host;

/// <summary><c>/healthz</c> (no token: for load balancers and systemd) <c>/v1/host</c> (the probed host facts) and <c>/v1/host/devices</c> (PCI and USB devices, read when asked).</summary>
public static class HostApi
{
    /// <summary>Maps the host endpoints.</summary>
    public static IEndpointRouteBuilder MapHost(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", Health);
        app.MapGet("/v1/host", GetHost);
        app.MapGet("/v1/host/devices", GetDevices);
        return app;
    }

    private static Ok<string> Health() => TypedResults.Ok("ok");

    private static Ok<HostDeviceInventory> GetDevices() => TypedResults.Ok(HostDevices.Read());

    private static Ok<HostInfo> GetHost(HostFacts facts, Kvm.Agent.Storage.StoragePools pools) => TypedResults.Ok(WithStorage(WithCpuMemory(facts, WithDevices(new HostInfo
    {
        Hostname = Environment.MachineName,
        AgentVersion = typeof(HostApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0",
        QemuVersion = facts.QemuVersion.ToString(),
        KvmPresent = facts.KvmPresent,
        KvmUsable = facts.KvmUsable,
        DefaultAccelerator = facts.DefaultAccelerator,
        CpuCores = facts.CpuCores,
        MemoryMib = facts.MemoryMib,
        MachineTypes = [.. facts.MachineTypes],
        CpuModels = [.. facts.CpuModels],
        FirmwareTypes = facts.Ovmf.Code4M is not null || facts.Ovmf.Code2M is not null ? ["bios", "uefi"] : ["bios"],
        EfiVarsTemplates = [.. new[] { facts.Ovmf.Vars2M is null ? null : "2m", facts.Ovmf.Vars4M is null ? null : "4m" }.OfType<string>()],
        SecureBootAvailable = facts.Ovmf.Code4MSecure is not null && facts.Ovmf.Vars4MEnrolled is not null,
        StoragePools = [.. pools.All().Select(p => p.Name)],
    })), pools));

    private static HostInfo WithStorage(HostInfo info, Kvm.Agent.Storage.StoragePools pools)
    {
        var support = pools.Support();
        info.StoragePoolTypes = [.. support.Where(s => s.Value is null).Select(s => s.Key)];
        info.StoragePoolTypesUnavailable = support.Where(s => s.Value is not null).ToDictionary(s => s.Key, s => s.Value!, StringComparer.Ordinal);
        return info;
    }

    private static HostInfo WithDevices(HostInfo info)
    {
        var devices = HostDevices.Read();
        info.PciDevices = devices.PciDevices;
        info.UsbDevices = devices.UsbDevices;
        return info;
    }

    private static HostInfo WithCpuMemory(HostFacts facts, HostInfo info)
    {
        info.NestedVirtualization = facts.NestedVirtualization is not null;
        info.HugepageSizesMib = [.. (facts.HugepageMounts ?? new Dictionary<string, string>()).Keys.Select(long.Parse).Order()];
        if (KsmState.Read() is { } ksm)
            (info.KsmRunning, info.KsmPagesShared, info.KsmPagesSharing) = (ksm.Running, ksm.PagesShared, ksm.PagesSharing);
        return info;
    }
}
