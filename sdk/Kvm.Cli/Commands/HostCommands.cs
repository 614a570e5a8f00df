using System.CommandLine;
using System.Globalization;
using Kvm.Cli.Options;
using Kvm.Cli.Output;
using Kvm.Client;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Cli.Commands;

/// <summary>Host facts, networks, images and shell completion.</summary>
public static class HostCommands
{
    /// <summary><c>host</c>: what the agent probed at start.</summary>
    public static Command Host(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("host", "Show the host's facts and capabilities: QEMU, KVM, CPUs, memory, firmware, machine types, CPU models, pools.") { output },
            "kvmctl host", "kvmctl host -o json | jq .cpu_models");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var host = await client.GetHostAsync(token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, host, format);
                return ExitCodes.Ok;
            }
            string YesNo(bool? b) => b switch { true => "yes", false => "no", null => "unknown" };
            string Join(List<string>? items) => items is null ? "" : string.Join(", ", items);
            var rows = new (string, string)[]
            {
                ("hostname", host.Hostname ?? ""),
                ("agent", host.AgentVersion ?? ""),
                ("qemu", host.QemuVersion ?? ""),
                ("kvm", $"{YesNo(host.KvmPresent)} (/dev/kvm), usable: {YesNo(host.KvmUsable)}"),
                ("default accelerator", host.DefaultAccelerator ?? ""),
                ("cpus", host.CpuCores?.ToString(CultureInfo.InvariantCulture) ?? ""),
                ("memory", host.MemoryMib is { } m ? $"{m} MiB" : ""),
                ("firmware", Join(host.FirmwareTypes)),
                ("efi vars templates", Join(host.EfiVarsTemplates)),
                ("secure boot", YesNo(host.SecureBootAvailable)),
                ("storage pools", Join(host.StoragePools)),
                ("pool types", Join(host.StoragePoolTypes) + string.Concat((host.StoragePoolTypesUnavailable ?? []).Select(u => $"; not {u.Key}: {u.Value}"))),
                ("machine types", Join(host.MachineTypes)),
                ("cpu models", Join(host.CpuModels)),
            };
            var width = rows.Max(r => r.Item1.Length) + 2;
            foreach (var (key, value) in rows.Where(r => r.Item2.Length > 0))
                cli.Out.WriteLine($"{(key + ":").PadRight(width)}{Wrap(value, width, 100)}");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    // Long comma lists (machine types, CPU models) wrap under their value column.
    private static string Wrap(string text, int indent, int width)
    {
        var lines = new List<string>();
        var line = "";
        foreach (var word in text.Split(' '))
        {
            if (line.Length > 0 && indent + line.Length + 1 + word.Length > width)
            {
                lines.Add(line);
                line = word;
            }
            else
            {
                line = line.Length == 0 ? word : line + " " + word;
            }
        }
        lines.Add(line);
        return string.Join("\n" + new string(' ', indent), lines);
    }

    /// <summary><c>networks</c> (list) with create and delete.</summary>
    public static Command Networks(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("networks", "List networks (Linux bridges VM interfaces join); see the subcommands to manage them.") { output },
            "kvmctl networks", "kvmctl networks create br-lab --address 192.168.50.1/24", "kvmctl networks create vmbr0 --type existing", "kvmctl networks delete br-lab");
        command.SetAction((parsed, ct) => ListNetworks(cli, parsed, output, ct));
        var listOutput = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var list = cli.Examples(new Command("list", "List networks.") { listOutput }, "kvmctl networks list -o json");
        list.SetAction((parsed, ct) => ListNetworks(cli, parsed, listOutput, ct));
        command.Subcommands.Add(list);

        var name = new Argument<string>("NAME") { Description = "Bridge name (at most 15 characters)." };
        var type = new Option<string?>("--type") { Description = "bridge (the agent creates and owns it; default) or existing (adopt a bridge, never changed).", HelpName = "bridge|existing" };
        var address = new Option<string?>("--address") { Description = "Host address on the bridge, CIDR (192.168.50.1/24).", HelpName = "CIDR" };
        var mtu = new Option<int?>("--mtu") { Description = "Bridge MTU.", HelpName = "N" };
        var vlan = new Option<bool?>("--vlan-filtering") { Description = "Make the bridge VLAN-aware." };
        var create = cli.Examples(new Command("create", "Create (or adopt) a bridge network.") { name, type, address, mtu, vlan },
            "kvmctl networks create br-lab --address 192.168.50.1/24", "kvmctl networks create vmbr0 --type existing");
        create.SetAction((parsed, ct) =>
        {
            var spec = new NetworkSpec { Name = parsed.GetValue(name), Type = parsed.GetValue(type), Address = parsed.GetValue(address), Mtu = parsed.GetValue(mtu), VlanFiltering = parsed.GetValue(vlan) };
            var origins = new OptionOrigins();
            origins.Record(AttrPath.Root.Attr("name"), $"NAME {spec.Name}");
            origins.Record(AttrPath.Root.Attr("type"), $"--type {spec.Type}");
            origins.Record(AttrPath.Root.Attr("address"), $"--address {spec.Address}");
            origins.Record(AttrPath.Root.Attr("mtu"), $"--mtu {spec.Mtu}");
            origins.Record(AttrPath.Root.Attr("vlan_filtering"), "--vlan-filtering");
            return cli.SubmitAsync(parsed, Cli.Quick, spec, origins, async (client, token) =>
            {
                var network = (await client.CreateNetworkAsync(spec, token)).Value;
                cli.Out.WriteLine($"network {network.Name} created ({network.State}). Use it: --net net0=virtio,bridge={network.Name}");
                return ExitCodes.Ok;
            }, ct);
        });
        command.Subcommands.Add(create);

        var deleteName = new Argument<string>("NAME") { Description = "Bridge name." };
        var delete = cli.Examples(new Command("delete", "Delete a network (an adopted bridge is only forgotten, never removed).") { deleteName }, "kvmctl networks delete br-lab");
        delete.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            await client.DeleteNetworkAsync(parsed.GetValue(deleteName)!, token);
            cli.Out.WriteLine($"network {parsed.GetValue(deleteName)} deleted.");
            return ExitCodes.Ok;
        }, ct));
        command.Subcommands.Add(delete);
        return command;
    }

    private static Task<int> ListNetworks(Cli cli, ParseResult parsed, OutputOption output, CancellationToken ct) =>
        cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var networks = await client.ListNetworksAsync(token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, networks.ToList(), format);
                return ExitCodes.Ok;
            }
            var table = new Table("NETWORK", "TYPE", "STATE", "ADDRESS", "MTU", "VLAN-AWARE");
            foreach (var n in networks)
                table.Add((n.Name ?? "", Color.None), (n.Type ?? "bridge", Color.None), (n.State ?? "", n.State == "up" ? Color.Green : n.State == "missing" ? Color.Red : Color.None),
                    (n.Address ?? "", Color.None), ((n.EffectiveMtu ?? n.Mtu)?.ToString(CultureInfo.InvariantCulture) ?? "", Color.None), (n.VlanFiltering == true ? "yes" : "no", Color.None));
            if (table.Count == 0)
                cli.Err.WriteLine("no networks. VM interfaces without a bridge use user-mode NAT; create a bridge: kvmctl networks create br-lab --address 192.168.50.1/24");
            else
                table.Write(cli.Out, Terminal.ColorOut);
            return ExitCodes.Ok;
        }, ct);

    /// <summary><c>images</c>: says plainly that the agent has no image API yet.</summary>

}
