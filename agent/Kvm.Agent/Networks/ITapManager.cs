namespace Kvm.Agent.Networks;

/// <summary>
/// Taps for bridged NICs: created before QEMU starts, removed after it stops. The agent touches only
/// taps it named (<see cref="TapName"/>) and bridges it created or adopted.
/// </summary>
public interface ITapManager
{
    /// <summary>Creates the tap if missing, joins it to <paramref name="bridge"/> (which must exist), sets the MTU and brings it up.</summary>
    Task EnsureTapAsync(string tap, string bridge, int? mtu, CancellationToken cancellationToken);

    /// <summary>Removes the tap if it exists.</summary>
    Task RemoveTapAsync(string tap, CancellationToken cancellationToken);
}

/// <summary>Tap naming, Proxmox style: <c>tap{vm_id}i{n}</c> for slot <c>net{n}</c> (at most 15 characters).</summary>
public static class TapName
{
    /// <summary>The tap name for a VM's NIC slot.</summary>
    public static string For(long vmId, string slot) => $"tap{vmId}i{slot["net".Length..]}";
}
