namespace Kvm.Agent.Storage;

/// <summary>DI registration of the storage feature.</summary>
public static class StorageServices
{
    /// <summary>
    /// Registers pools, volumes, qemu-img and <see cref="IVmStorage"/>. Needs an <c>ICommandRunner</c>; uses
    /// <see cref="IVolumeUsage"/> and <see cref="IOnlineResizer"/> when registered (resolved per call, so the VM
    /// feature may depend on <see cref="IVmStorage"/> without a cycle).
    /// </summary>
    public static IServiceCollection AddStorage(this IServiceCollection services, StorageOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton<QemuImg>();
        services.AddSingleton<StoragePools>();
        services.AddSingleton<Volumes>();
        services.AddSingleton<VmStorage>();
        services.AddSingleton<IVmStorage>(sp => sp.GetRequiredService<VmStorage>());
        return services;
    }
}
