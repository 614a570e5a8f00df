using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>Start with the host, like Proxmox's <c>onboot</c> and <c>startup order=,up=,down=</c>.</summary>
public sealed class AutostartSpec
{
    /// <summary>Start at agent start-up.</summary>
    [Setting("Start the VM when the agent starts (with the host) if it is not running and its `power_state` is not `stopped`, like Proxmox's `onboot`.",
        Default = false, Update = UpdateKind.Live)]
    public bool? Enabled { get; set; }

    /// <summary>Start order.</summary>
    [Setting("Start order among autostart VMs: lower first; VMs without an order start after those with one, by VM ID. Shutdown (see the agent's `--stop-vms-on-exit`) goes in reverse.",
        Min = 0, Max = 1_000_000, Update = UpdateKind.Live)]
    public int? Order { get; set; }

    /// <summary>Delay after start.</summary>
    [Setting("Seconds to wait after starting this VM before the next autostart VM starts (Proxmox `up`).", Default = 0, Min = 0, Max = 3600, Update = UpdateKind.Live)]
    public int? UpDelaySeconds { get; set; }

    /// <summary>Shutdown bound.</summary>
    [Setting("Seconds this VM gets to shut down gracefully when the agent stops the host's VMs, before it is stopped by force; the next VM's shutdown starts after it (Proxmox `down`).",
        Default = 60, Min = 0, Max = 3600, Update = UpdateKind.Live)]
    public int? DownDelaySeconds { get; set; }
}
