using System.Globalization;
using System.Text.Json.Nodes;
using Kvm.Agent.Networks;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>
/// Hot-plug of disks and network interfaces into a running QEMU. What is plugged is exactly what the argv builder
/// gives the slot at a cold start (<see cref="QemuCommand.DeviceArgsOf"/>): block nodes and objects through QMP,
/// netdevs and devices through the monitor's own option parser (HMP <c>netdev_add</c>/<c>device_add</c>), the one
/// the command line uses. On q35 a PCI device goes onto a free spare root port (<see cref="QemuCommand.HotplugPortId"/>).
/// The monitor's running spec follows every plug and unplug, so pending changes, clean-up and adoption see the truth.
/// </summary>
public sealed partial class VmRuntime
{
    /// <summary>How long an unplug waits for DEVICE_DELETED (a PCI device needs the guest's consent) before it is left pending.</summary>
    public static TimeSpan UnplugTimeout { get; set; } = TimeSpan.FromSeconds(15);

    private TapSettings? TapSettingsOf => services.GetService<TapSettings>();

    /// <summary>NIC settings that live on the host side of the tap (<see cref="TapSettings"/>).</summary>
    private static readonly HashSet<string> TapAttributes = new(StringComparer.Ordinal) { "vlan_tag", "trunks", "rate_mbps", "firewall", "firewall_rules" };

    private static string NicPath(string slot) => Model.Schema.AttrPath.Root.Attr("network_interfaces").Key(slot).ToString();

    /// <summary>Re-applies a running bridged NIC's VLANs, rate limit and firewall to its tap.</summary>
    private async Task<bool> ApplyTapSettingsAsync(VmMonitor monitor, long vmId, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        var nic = Defaults.Apply(after).NetworkInterfaces?.GetValueOrDefault(slot);
        if (TapSettingsOf is not { } tapSettings || nic?.Bridge is null || monitor.StartedSpec.NetworkInterfaces?.GetValueOrDefault(slot)?.Bridge != nic.Bridge)
            return false;
        await tapSettings.ApplyAsync(TapName.For(vmId, slot), nic, NicPath(slot), cancellationToken);
        return true;
    }

    /// <summary>Adds or removes one disk or NIC entry live; false leaves it pending.</summary>
    private async Task<bool> HotplugAsync(VmMonitor monitor, long vmId, string map, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        var effective = Defaults.Apply(after);
        var running = monitor.StartedSpec;
        bool done;
        if (map == "disks")
        {
            var wanted = effective.Disks?.GetValueOrDefault(slot);
            var present = running.Disks?.ContainsKey(slot) == true;
            done = wanted is not null
                ? present || await PlugDiskAsync(monitor, vmId, slot, after, cancellationToken)
                : !present || await UnplugDiskAsync(monitor, slot, running, cancellationToken);
        }
        else
        {
            var wanted = effective.NetworkInterfaces?.GetValueOrDefault(slot);
            var present = running.NetworkInterfaces?.ContainsKey(slot) == true;
            done = wanted is not null
                ? present || await PlugNicAsync(monitor, vmId, slot, after, cancellationToken)
                : !present || await UnplugNicAsync(monitor, vmId, slot, running, cancellationToken);
        }
        return done; // ApplyLiveAsync records the entry in the running spec
    }

    private async Task<bool> PlugDiskAsync(VmMonitor monitor, long vmId, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        if (Storage is not { } storage)
            return false;
        // Only this disk: the others are open in QEMU, and an offline grow of one of them must not run here.
        var one = VmStore.Deserialize(VmStore.Serialize(after));
        one.Disks = new Dictionary<string, DiskSpec>(StringComparer.Ordinal) { [slot] = after.Disks![slot] };
        one.Cdroms = null;
        var created = await storage.EnsureInlineDisksAsync(vmId, one, cancellationToken);
        try
        {
            var (disks, _) = await storage.ResolveAsync(vmId, one, cancellationToken);
            var device = QemuCommand.DeviceArgsOf(after, facts, PathsFor(vmId, disks: disks), slot);
            if (!device.Ok)
                throw AgentProblemException.Validation(device.Errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
            var pairs = device.Pairs.ToList();
            // A shared controller (scsihwN) the running QEMU does not have yet comes first.
            if (QemuCommand.ScsiControllerDevice(after, slot) is { } controller && !await DeviceExistsAsync(monitor, controller.Id, cancellationToken))
                pairs.Insert(pairs.FindIndex(p => p.Option == "-device"), ("-device", controller.Device));
            await PlugPairsAsync(monitor, pairs, cancellationToken);
            if (Defaults.Apply(after).Disks![slot].HasThrottle())
                await ExecuteAsync(monitor, QemuCommand.ThrottleCommand(after, slot), cancellationToken);
            Log.DevicePlugged(logger, vmId, slot);
            return true;
        }
        catch
        {
            foreach (var path in created)
                await storage.DiscardCreatedAsync(path);
            throw;
        }
    }

    private async Task<bool> UnplugDiskAsync(VmMonitor monitor, string slot, VmSpec running, CancellationToken cancellationToken)
    {
        if (!await DeleteDeviceAsync(monitor, slot, cancellationToken))
            return false;
        foreach (var node in new[] { QemuCommand.DriveNode(slot), "file-" + slot })
            await IgnoreMissingAsync(monitor.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = node }, cancellationToken: cancellationToken));
        // virtio-scsi-single gives each disk its own controller; it goes with the disk, as it would at a cold start.
        if (QemuCommand.OwnControllerId(running, slot) is { } own && !await DeleteDeviceAsync(monitor, own, cancellationToken))
            return false;
        if (running.Disks?.GetValueOrDefault(slot)?.Iothread == true)
            await IgnoreMissingAsync(monitor.ExecuteAsync("object-del", new JsonObject { ["id"] = $"iothread-{slot}" }, cancellationToken: cancellationToken));
        await RemoveDroppedInlineDiskAsync(monitor.VmId, running, slot, cancellationToken);
        Log.DeviceUnplugged(logger, monitor.VmId, slot);
        return true;
    }

    private async Task<bool> PlugNicAsync(VmMonitor monitor, long vmId, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        var nic = Defaults.Apply(after).NetworkInterfaces![slot];
        var taps = new Dictionary<string, string>(StringComparer.Ordinal);
        if (nic.Bridge is not null)
        {
            if (Taps is not { } tapManager)
                return false;
            taps[slot] = TapName.For(vmId, slot);
            await tapManager.EnsureTapAsync(taps[slot], nic.Bridge, nic.Mtu, cancellationToken);
            if (TapSettingsOf is { } tapSettings)
                await tapSettings.ApplyAsync(taps[slot], nic, NicPath(slot), cancellationToken);
        }
        try
        {
            var device = QemuCommand.DeviceArgsOf(after, facts, PathsFor(vmId, taps: taps, macs: MacsFor(vmId, after).ToDictionary()), slot);
            if (!device.Ok)
                throw AgentProblemException.Validation(device.Errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
            await PlugPairsAsync(monitor, device.Pairs, cancellationToken);
            if (nic.LinkUp == false)
                await monitor.ExecuteAsync("set_link", new JsonObject { ["name"] = slot, ["up"] = false }, cancellationToken: cancellationToken);
            Log.DevicePlugged(logger, vmId, slot);
            return true;
        }
        catch
        {
            if (taps.Count > 0)
                await Taps!.RemoveTapAsync(taps[slot], CancellationToken.None);
            throw;
        }
    }

    private async Task<bool> UnplugNicAsync(VmMonitor monitor, long vmId, string slot, VmSpec running, CancellationToken cancellationToken)
    {
        if (!await DeleteDeviceAsync(monitor, slot, cancellationToken))
            return false;
        await IgnoreMissingAsync(monitor.ExecuteAsync("netdev_del", new JsonObject { ["id"] = slot }, cancellationToken: cancellationToken));
        if (running.NetworkInterfaces?.GetValueOrDefault(slot)?.Bridge is not null && Taps is { } taps)
        {
            if (TapSettingsOf is { } tapSettings)
                await tapSettings.RemoveAsync(TapName.For(vmId, slot), cancellationToken);
            await taps.RemoveTapAsync(TapName.For(vmId, slot), cancellationToken);
        }
        Log.DeviceUnplugged(logger, vmId, slot);
        return true;
    }

    /// <summary>
    /// Deletes the image of inline disk <paramref name="slot"/> of <paramref name="before"/> once it left the spec: an inline
    /// disk lives and dies with its entry (a volume stays). Without this a removed disk's file would outlive the VM and
    /// come back, old data and all, if the slot were used again.
    /// </summary>
    public async Task RemoveDroppedInlineDiskAsync(long vmId, VmSpec before, string slot, CancellationToken cancellationToken)
    {
        if (Storage is not { } storage || before.Disks?.GetValueOrDefault(slot) is not { VolumeId: null } disk)
            return;
        var one = VmStore.Deserialize(VmStore.Serialize(before));
        one.Disks = new Dictionary<string, DiskSpec>(StringComparer.Ordinal) { [slot] = disk };
        await storage.RemoveInlineDisksAsync(vmId, one, cancellationToken);
    }

    /// <summary>Settings with no command-line form (<see cref="QemuCommand.PostStartCommands"/>), sent once QMP answers; a failure is logged, the VM keeps running.</summary>
    private async Task PostStartAsync(VmMonitor monitor, VmSpec userSpec, CancellationToken cancellationToken)
    {
        foreach (var command in QemuCommand.PostStartCommands(userSpec))
        {
            try
            {
                await ExecuteAsync(monitor, command, cancellationToken);
            }
            catch (Exception e) when (e is QmpException or IOException or TimeoutException or AgentProblemException)
            {
                Log.LiveChangeFailed(logger, monitor.VmId, command.Execute, e.Message);
            }
        }
    }

    private static Task<JsonNode?> ExecuteAsync(VmMonitor monitor, QmpCommand command, CancellationToken cancellationToken)
    {
        var arguments = new JsonObject();
        foreach (var (key, value) in command.Arguments)
            arguments[key] = value switch
            {
                bool b => JsonValue.Create(b),
                long l => JsonValue.Create(l),
                int i => JsonValue.Create(i),
                _ => JsonValue.Create(value.ToString()),
            };
        return monitor.ExecuteAsync(command.Execute, arguments, cancellationToken: cancellationToken);
    }

    /// <summary>Sends argv pairs to QEMU in order; on a failure, undoes what this call added.</summary>
    private async Task PlugPairsAsync(VmMonitor monitor, IReadOnlyList<(string Option, string Value)> pairs, CancellationToken cancellationToken)
    {
        var undo = new Stack<(string Command, JsonObject Arguments)>();
        var q35 = QemuCommand.HotplugPortCount(monitor.StartedSpec) > 0;
        try
        {
            foreach (var (option, value) in pairs)
            {
                switch (option)
                {
                    case "-blockdev":
                        var node = KeyVal.ToJson(value, head: null);
                        await monitor.ExecuteAsync("blockdev-add", node, cancellationToken: cancellationToken);
                        undo.Push(("blockdev-del", new JsonObject { ["node-name"] = node["node-name"]!.GetValue<string>() }));
                        break;
                    case "-object":
                        var obj = KeyVal.ToJson(value, head: "qom-type");
                        await monitor.ExecuteAsync("object-add", obj, cancellationToken: cancellationToken);
                        undo.Push(("object-del", new JsonObject { ["id"] = obj["id"]!.GetValue<string>() }));
                        break;
                    case "-chardev":
                        await HumanAsync(monitor, "chardev-add " + value, cancellationToken);
                        undo.Push(("chardev-remove", new JsonObject { ["id"] = KeyVal.Get(value, "id")! }));
                        break;
                    case "-netdev":
                        await HumanAsync(monitor, "netdev_add " + value, cancellationToken);
                        undo.Push(("netdev_del", new JsonObject { ["id"] = KeyVal.Get(value, "id")! }));
                        break;
                    case "-device":
                        var device = value;
                        // No bus: a PCI device on the root bus. q35's takes no hot-plug; a spare root port does.
                        if (q35 && KeyVal.Get(value, "bus") is null)
                            device = KeyVal.Without(value, "addr") + ",bus=" + await FreeHotplugPortAsync(monitor, cancellationToken);
                        await HumanAsync(monitor, "device_add " + device, cancellationToken);
                        undo.Push(("device_del", new JsonObject { ["id"] = KeyVal.Get(value, "id")! }));
                        break;
                    default:
                        throw new InvalidOperationException($"cannot hot-plug {option}");
                }
            }
        }
        catch
        {
            foreach (var (command, arguments) in undo)
            {
                try { await monitor.ExecuteAsync(command, arguments, cancellationToken: CancellationToken.None); }
                catch (Exception e) when (e is QmpException or IOException or TimeoutException) { }
            }
            throw;
        }
    }

    /// <summary>device_del, then DEVICE_DELETED within <see cref="UnplugTimeout"/>; false (pending) when the guest does not let go.</summary>
    private async Task<bool> DeleteDeviceAsync(VmMonitor monitor, string id, CancellationToken cancellationToken)
    {
        var deleted = monitor.DeviceDeleted(id);
        try
        {
            await monitor.ExecuteAsync("device_del", new JsonObject { ["id"] = id }, cancellationToken: cancellationToken);
        }
        catch (QmpException e) when (e.ErrorClass == "DeviceNotFound")
        {
            return true;
        }
        try
        {
            await deleted.WaitAsync(UnplugTimeout, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            // A removal already requested is not an error; the guest may still let go.
            if (!await DeviceExistsAsync(monitor, id, cancellationToken))
                return true;
            Log.UnplugPending(logger, monitor.VmId, id, UnplugTimeout.TotalSeconds);
            return false;
        }
    }

    private static async Task<bool> DeviceExistsAsync(VmMonitor monitor, string id, CancellationToken cancellationToken)
    {
        try
        {
            await monitor.ExecuteAsync("qom-list", new JsonObject { ["path"] = "/machine/peripheral/" + id }, cancellationToken: cancellationToken);
            return true;
        }
        catch (QmpException)
        {
            return false;
        }
    }

    /// <summary>A spare root port with nothing behind it.</summary>
    private static async Task<string> FreeHotplugPortAsync(VmMonitor monitor, CancellationToken cancellationToken)
    {
        var buses = await monitor.ExecuteAsync("query-pci", cancellationToken: cancellationToken) as JsonArray;
        var ports = buses?.OfType<JsonObject>().SelectMany(b => b["devices"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(d => d["qdev_id"]?.GetValue<string>()?.StartsWith("hotplug", StringComparison.Ordinal) == true)
            .Where(d => (d["pci_bridge"]?["devices"] as JsonArray ?? []).Count == 0)
            .Select(d => d["qdev_id"]!.GetValue<string>())
            .Order(StringComparer.Ordinal)
            .ToList() ?? [];
        return ports.FirstOrDefault()
            ?? throw AgentProblemException.InvalidState("every spare PCIe root port of this VM is taken; the device is added at the next start.");
    }

    private static async Task HumanAsync(VmMonitor monitor, string commandLine, CancellationToken cancellationToken)
    {
        var output = (await monitor.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = commandLine }, cancellationToken: cancellationToken))
            ?.GetValue<string>()?.Trim();
        if (!string.IsNullOrEmpty(output))
            throw new QmpException(commandLine.Split(' ')[0], "GenericError", output);
    }

    private static async Task IgnoreMissingAsync(Task<JsonNode?> command)
    {
        try { await command; }
        catch (QmpException e) when (e.ErrorClass == "DeviceNotFound" || e.Description.Contains("not found", StringComparison.OrdinalIgnoreCase)) { }
    }

    private VmPaths PathsFor(long vmId, IReadOnlyDictionary<string, DiskFile>? disks = null, IReadOnlyDictionary<string, string>? taps = null,
        IReadOnlyDictionary<string, string>? macs = null)
    {
        var runDir = RunDirOf(vmId);
        return new VmPaths
        {
            RunDir = runDir,
            QmpSocket = Path.Combine(runDir, "qmp.sock"),
            PidFile = Path.Combine(runDir, "qemu.pid"),
            SerialLog = SerialLogPath(vmId),
            Disks = disks ?? new Dictionary<string, DiskFile>(),
            Taps = taps ?? new Dictionary<string, string>(),
            Macs = macs ?? new Dictionary<string, string>(),
        };
    }
}

/// <summary>QEMU's <c>key=value,…</c> option strings (commas doubled inside values) read back, for QMP.</summary>
internal static class KeyVal
{
    /// <summary>The options in order; the first one may have no key (a driver or type name).</summary>
    public static List<(string? Key, string Value)> Parse(string text)
    {
        var items = new List<(string?, string)>();
        var current = new System.Text.StringBuilder();
        var parts = new List<string>();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == ',' && i + 1 < text.Length && text[i + 1] == ',')
            {
                current.Append(',');
                i++;
            }
            else if (text[i] == ',')
            {
                parts.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(text[i]);
            }
        }
        parts.Add(current.ToString());
        foreach (var part in parts)
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            items.Add(eq < 0 ? (null, part) : (part[..eq], part[(eq + 1)..]));
        }
        return items;
    }

    /// <summary>The value of <paramref name="key"/>, or null.</summary>
    public static string? Get(string text, string key) => Parse(text).FirstOrDefault(p => p.Key == key).Value;

    /// <summary>The same option string without <paramref name="key"/> (values stay escaped as given).</summary>
    public static string Without(string text, string key) =>
        string.Join(",", Parse(text).Where(p => p.Key != key).Select(p => p.Key is null ? QemuOptions.Escape(p.Value) : p.Key + "=" + QemuOptions.Escape(p.Value)));

    /// <summary>
    /// As QMP JSON, typed the way QEMU's keyval visitor types the command line: <c>on</c>/<c>off</c> are booleans,
    /// integers are numbers, dotted keys are nested objects. A key-less head becomes <paramref name="head"/>.
    /// </summary>
    public static JsonObject ToJson(string text, string? head)
    {
        var root = new JsonObject();
        foreach (var (key, value) in Parse(text))
        {
            var name = key ?? head ?? throw new FormatException($"option \"{value}\" has no key");
            var target = root;
            var dotted = name.Split('.');
            for (var i = 0; i < dotted.Length - 1; i++)
                target = (JsonObject)(target[dotted[i]] ??= new JsonObject());
            target[dotted[^1]] = value switch
            {
                "on" => true,
                "off" => false,
                _ when key is not null && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) => n,
                _ => value,
            };
        }
        return root;
    }
}
