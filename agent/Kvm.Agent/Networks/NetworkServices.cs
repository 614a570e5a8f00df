namespace Kvm.Agent.Networks;

/// <summary>DI registration of the network feature.</summary>
public static class NetworkServices
{
    /// <summary>Registers bridges, <c>ip</c> and <see cref="ITapManager"/>. Needs an <c>ICommandRunner</c>.</summary>
    public static IServiceCollection AddNetworking(this IServiceCollection services, NetworkOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton<IpLink>();
        services.AddSingleton<Dnsmasq>();
        services.AddSingleton<Nat>();
        services.AddSingleton<Bridges>();
        services.AddSingleton<Taps>();
        services.AddSingleton<ITapManager>(sp => sp.GetRequiredService<Taps>());
        services.AddSingleton<TapSettings>();
        return services;
    }
}
