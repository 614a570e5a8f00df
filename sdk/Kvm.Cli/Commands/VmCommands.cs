using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Kvm.Cli.Options;
using Kvm.Cli.Output;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Cli.Commands;

/// <summary>The VM verbs: list, show, create, set, the power actions, wait, destroy, unlock, status.</summary>
public static class VmCommands
{
    /// <summary>Every VM verb.</summary>
    public static IEnumerable<Command> All(Cli cli) =>
    [
        List(cli), Show(cli), Create(cli), Set(cli), Status(cli),
        Power(cli, "start", "Start a VM (already running is success).", "starting", "started", (c, id, _, ct) => c.StartVmAsync(id, ct)),
        Power(cli, "stop", "Stop a VM at once, like pulling the plug (QMP quit, then kill). For a clean stop use shutdown.", "stopping", "stopped", (c, id, _, ct) => c.StopVmAsync(id, ct)),
        Shutdown(cli),
        Power(cli, "reboot", "Shut a VM down (ACPI, bounded, then forced) and start it again; pending changes apply.", "rebooting", "rebooted",
            (c, id, timeout, ct) => c.RebootVmAsync(id, timeout, ct), withTimeout: true),
        Power(cli, "reset", "Hard-reset a running VM (like the reset button).", "resetting", "reset", (c, id, _, ct) => c.ResetVmAsync(id, ct)),
        Power(cli, "suspend", "Pause a running VM (its memory stays; it runs no code).", "suspending", "suspended", (c, id, _, ct) => c.SuspendVmAsync(id, ct)),
        Power(cli, "resume", "Continue a paused VM.", "resuming", "resumed", (c, id, _, ct) => c.ResumeVmAsync(id, ct)),
        Wait(cli), Destroy(cli), Unlock(cli),
    ];

    /// <summary>A VM ID argument; tab completion offers the agent's VM IDs.</summary>
    public static Argument<long> VmId(Cli cli)
    {
        var argument = new Argument<long>("ID")
        {
            Description = "Numeric VM ID (100 and up), as in qm.",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0)
                    return id;
                result.AddError($"VM ID \"{text}\" is not a number like 300.");
                return 0;
            },
        };
        argument.CompletionSources.Add(context => CompleteVmIds(cli, context.ParseResult));
        return argument;
    }

    private static IEnumerable<string> CompleteVmIds(Cli cli, ParseResult parsed)
    {
        try
        {
            var (client, _) = cli.Connection.Open(parsed, TimeSpan.FromSeconds(2));
            using (client)
                return [.. client.ListVmsAsync().GetAwaiter().GetResult().Select(v => v.VmId?.ToString(CultureInfo.InvariantCulture) ?? "")];
        }
        catch (Exception e) when (e is CliException or KvmApiException or HttpRequestException or TaskCanceledException)
        {
            return [];
        }
    }

    private static Command List(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var all = new Option<bool>("--all", "-a") { Description = "Accepted for virsh habits; every VM is always listed.", Hidden = true };
        var command = cli.Examples(new Command("list", "List VMs: ID, name, status, CPUs, memory, uptime, IP addresses.") { output, all },
            "kvmctl list", "kvmctl list --output json | jq '.[] | select(.status == \"running\") | .vm_id'");
        command.Aliases.Add("ls");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var vms = await client.ListVmsAsync(token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, vms.ToList(), format);
                return ExitCodes.Ok;
            }
            var table = new Table("VMID", "NAME", "STATUS", "CPUS", "MEMORY", "UPTIME", "IPS");
            var now = DateTimeOffset.UtcNow;
            foreach (var vm in vms)
            {
                var effective = Defaults.Apply(vm);
                var cpus = (effective.Cpu?.Sockets ?? 1) * (effective.Cpu?.Cores ?? 1) * (effective.Cpu?.Threads ?? 1);
                table.Add(
                    (Id(vm), Color.None), (vm.Name ?? "", Color.None), (vm.Status ?? "", Terminal.ForStatus(vm.Status)),
                    (cpus.ToString(CultureInfo.InvariantCulture), Color.None), ($"{effective.Memory?.SizeMib} MiB", Color.None),
                    (Formats.Uptime(vm.StartedAt, now), Color.None), (IpAddresses(vm), Color.None));
            }
            if (table.Count == 0)
                cli.Err.WriteLine("no VMs. Create one: kvmctl create 100 --name web --memory 1024 --disk scsi0=16G --net net0=virtio");
            else
                table.Write(cli.Out, Terminal.ColorOut);
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    // The agent reports no guest addresses yet (no guest agent or DHCP lease reading); the column stays empty until it does.
    private static string IpAddresses(Vm vm) => "";

    private static string Id(Vm vm) => vm.VmId?.ToString(CultureInfo.InvariantCulture) ?? "?";

    private static Command Show(Cli cli)
    {
        var id = VmId(cli);
        var output = Formats.Option(Format.Yaml, Format.Json);
        var command = cli.Examples(new Command("show", "Print a VM's whole configuration and state (like qm config or virsh dumpxml), as YAML or JSON.") { id, output },
            "kvmctl show 300", "kvmctl show 300 --output json > vm300.json");
        command.Aliases.Add("config");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var vm = (await client.GetVmAsync(parsed.GetValue(id), token)).Value;
            Formats.Write(cli.Out, vm, output.Get(parsed));
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Status(Cli cli)
    {
        var id = VmId(cli);
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print PID, uptime, accelerator, console and pending changes." };
        var command = cli.Examples(new Command("status", "Print a VM's status, like qm status: \"status: running\".") { id, verbose, output },
            "kvmctl status 300", "kvmctl status 300 --verbose", "kvmctl status 300 -o json");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var vm = (await client.GetVmAsync(parsed.GetValue(id), token)).Value;
            var format = output.Get(parsed);
            var facts = new JsonObject { ["vm_id"] = vm.VmId, ["name"] = vm.Name, ["status"] = vm.Status };
            if (parsed.GetValue(verbose) || format != Format.Table)
            {
                facts["pid"] = vm.Pid;
                facts["started_at"] = vm.StartedAt;
                facts["uptime"] = vm.StartedAt is null ? null : Formats.Uptime(vm.StartedAt, DateTimeOffset.UtcNow);
                facts["accelerator"] = vm.Accelerator;
                facts["console_endpoint"] = vm.ConsoleEndpoint;
                facts["pending_changes"] = vm.PendingChanges is null ? null : new JsonArray([.. vm.PendingChanges.Select(p => JsonValue.Create(p))]);
            }
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, (JsonNode)facts, format);
                return ExitCodes.Ok;
            }
            cli.Out.WriteLine($"status: {Terminal.Paint(vm.Status ?? "unknown", Terminal.ForStatus(vm.Status), Terminal.ColorOut)}");
            if (parsed.GetValue(verbose))
                foreach (var (key, value) in facts.Where(f => f.Key is not ("status" or "vm_id") && f.Value is not null))
                    cli.Out.WriteLine($"{key}: {(value is JsonArray list ? string.Join(", ", list) : value!.ToString())}");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Create(Cli cli)
    {
        var id = new Argument<long?>("ID")
        {
            Description = "VM ID (100 and up). Omitted: the agent takes the lowest free ID.",
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0)
                    return value;
                result.AddError($"VM ID \"{text}\" is not a number like 300.");
                return null;
            },
        };
        var options = new VmOptions();
        var start = new Option<bool>("--start") { Description = "Start the VM once created (qm create --start 1).", Arity = ArgumentArity.ZeroOrOne };
        start.CustomParser = result => result.Tokens.Count == 0 || DeviceSyntax.Bool("--start", result.Tokens[0].Value);
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("create", "Create a VM from qm-style options. It stays stopped unless --start is given."),
            "kvmctl create 300 --name web --memory 2048 --cores 2 --disk scsi0=16G --net net0=virtio,bridge=br0 --start",
            "kvmctl create 301 --name win --ostype win11 --bios ovmf --memory 8192 --cores 4 --disk scsi0=64G,cache=writeback,discard=on --cdrom ide2=default/win11.iso --boot order=ide2;scsi0",
            "kvmctl create 302 --name tiny --memory 256 --kernel /srv/vmlinuz --initrd /srv/initrd.img --append \"console=ttyS0\" --vga serial0",
            "kvmctl create 303 -memory 1024 -ide0 4 -net0 e1000 -cdrom default/debian.iso     (qm's spelling)");
        command.Arguments.Add(id);
        foreach (var option in options.All)
            command.Options.Add(option);
        command.Options.Add(start);
        command.Options.Add(output);
        command.SetAction((parsed, ct) =>
        {
            var spec = new VmSpec { VmId = parsed.GetValue(id) };
            OptionOrigins origins;
            try
            {
                origins = options.Apply(parsed, spec);
            }
            catch (CliException e)
            {
                return Task.FromResult(cli.Fail(e));
            }
            if (spec.Name is null && spec.VmId is { } vmId)
                spec.Name = $"vm-{vmId}";
            spec.PowerState = parsed.GetValue(start) ? "running" : "stopped";
            origins.Record(Kvm.Model.Schema.AttrPath.Root.Attr("power_state"), "--start");
            origins.Record(Kvm.Model.Schema.AttrPath.Root.Attr("vm_id"), $"ID {spec.VmId}");
            try
            {
                Cli.ThrowIfInvalid(Kvm.Model.Validation.Validator.Validate(spec), origins);
            }
            catch (CliException e)
            {
                return Task.FromResult(cli.Fail(e));
            }
            return cli.RunAsync(parsed, TimeSpan.FromMinutes(30), async (client, token) =>
            {
                Vm vm;
                try
                {
                    using (Progress.Start(spec.PowerState == "running" ? "creating and starting the VM" : "creating the VM"))
                        vm = (await client.CreateVmAsync(spec, Guid.NewGuid().ToString("N"), token)).Value;
                }
                catch (KvmApiException e)
                {
                    throw Cli.Problem(e, origins);
                }
                var format = output.Get(parsed);
                if (format != Format.Table)
                {
                    Formats.Write(cli.Out, vm, format);
                    return ExitCodes.Ok;
                }
                cli.Out.WriteLine($"VM {Id(vm)} ({vm.Name}) created; status: {Terminal.Paint(vm.Status ?? "", Terminal.ForStatus(vm.Status), Terminal.ColorOut)}.");
                if (vm.Status == "stopped")
                    cli.Out.WriteLine($"Start it with: kvmctl start {Id(vm)}");
                return ExitCodes.Ok;
            }, ct);
        });
        return command;
    }

    private static Command Set(Cli cli)
    {
        var id = VmId(cli);
        var options = new VmOptions();
        var delete = new Option<string[]>("--delete")
        {
            Description = "Remove devices or settings (comma-separated): slots like scsi1, net1, ide2, or description, tags, kernel, initrd, append, balloon, cpu, vga, boot, bios, ostype, machine.",
            HelpName = "LIST",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("set", "Change a VM with the same options as create. Prints which changes applied live and which wait for a restart (pending)."),
            "kvmctl set 300 --cores 4 --memory 4096",
            "kvmctl set 300 --disk scsi0=32G          (grow a disk; live while running)",
            "kvmctl set 300 --net net1=e1000 --cdrom ide2=none",
            "kvmctl set 300 --delete scsi1,net1");
        command.Arguments.Add(id);
        foreach (var option in options.All)
            command.Options.Add(option);
        command.Options.Add(delete);
        command.Options.Add(output);
        command.SetAction((parsed, ct) =>
        {
            var deletions = (parsed.GetValue(delete) ?? []).SelectMany(d => d.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            OptionOrigins check;
            try
            {
                // Syntax first, on an empty spec: a typo is reported without contacting the agent.
                check = options.Apply(parsed, new VmSpec());
                if (check.IsEmpty && deletions.Count == 0)
                    throw CliException.Usage("nothing to change: give options such as --cores 2, or --delete SLOT. See kvmctl set --help.");
            }
            catch (CliException e)
            {
                return Task.FromResult(cli.Fail(e));
            }
            return cli.RunAsync(parsed, TimeSpan.FromMinutes(10), async (client, token) =>
            {
                var vmId = parsed.GetValue(id);
                var (current, etag) = await client.GetVmAsync(vmId, token);
                var before = current.ToSpec();
                var spec = current.ToSpec();
                foreach (var item in deletions)
                    Delete(spec, item);
                var origins = options.Apply(parsed, spec);
                foreach (var item in deletions)
                    origins.Record(DeletedPath(item), $"--delete {item}");
                KeepPowerState(spec, current);
                Cli.ThrowIfInvalid([.. Kvm.Model.Validation.Validator.Validate(spec), .. spec.ValidateUpdate(before)], origins);
                VmUpdateResult result;
                try
                {
                    using (Progress.Start($"updating VM {vmId}"))
                        result = (await client.UpdateVmAsync(vmId, spec, etag, cancellationToken: token)).Value;
                }
                catch (KvmApiException e)
                {
                    throw Cli.Problem(e, origins, hint: e.Type == ProblemTypes.StaleEtag ? "another client changed the VM meanwhile; run the command again." : null);
                }
                var format = output.Get(parsed);
                if (format != Format.Table)
                {
                    Formats.Write(cli.Out, result, format);
                    return ExitCodes.Ok;
                }
                PrintChanges(cli, vmId, result, origins);
                return ExitCodes.Ok;
            }, ct);
        });
        return command;
    }

    private static readonly Dictionary<string, (string Path, Action<VmSpec> Clear)> Deletable = new(StringComparer.Ordinal)
    {
        ["description"] = ("description", s => s.Description = null),
        ["tags"] = ("tags", s => s.Tags = null),
        ["kernel"] = ("kernel", s => s.Kernel = null),
        ["initrd"] = ("initrd", s => s.Initrd = null),
        ["append"] = ("cmdline", s => s.Cmdline = null),
        ["cmdline"] = ("cmdline", s => s.Cmdline = null),
        ["balloon"] = ("memory.balloon", s => { if (s.Memory is { } m) m.Balloon = null; }),
        ["cpu"] = ("cpu.model", s => { if (s.Cpu is { } c) { c.Model = null; c.Flags = null; } }),
        ["vga"] = ("display", s => s.Display = null),
        ["boot"] = ("boot_order", s => s.BootOrder = null),
        ["bios"] = ("firmware", s => s.Firmware = null),
        ["ostype"] = ("os_type", s => s.OsType = null),
        ["machine"] = ("machine", s => s.Machine = null),
        ["scsihw"] = ("scsi_controller", s => s.ScsiController = null),
    };

    private static void Delete(VmSpec spec, string item)
    {
        if (Deletable.TryGetValue(item, out var setting))
        {
            setting.Clear(spec);
            return;
        }
        var removed = (spec.Disks?.Remove(item) ?? false) | (spec.Cdroms?.Remove(item) ?? false) | (spec.NetworkInterfaces?.Remove(item) ?? false);
        if (!removed)
            throw CliException.Usage($"--delete {item}: VM {spec.VmId} has no device in slot \"{item}\" and no setting of that name " +
                $"(settings: {string.Join(", ", Deletable.Keys)}).");
        spec.BootOrder?.Remove(item);
    }

    private static Kvm.Model.Schema.AttrPath DeletedPath(string item)
    {
        if (Deletable.TryGetValue(item, out var setting))
            return setting.Path.Split('.').Aggregate(Kvm.Model.Schema.AttrPath.Root, (p, n) => p.Attr(n));
        var collection = item.StartsWith("net", StringComparison.Ordinal) ? "network_interfaces" : "disks";
        return Kvm.Model.Schema.AttrPath.Root.Attr(collection).Key(item);
    }

    // The agent enforces power_state on every update; kvmctl's verbs set power directly, so an update keeps whatever the VM is doing now.
    private static void KeepPowerState(VmSpec spec, Vm current)
    {
        var desired = spec.PowerState ?? "running";
        var up = current.Pid is not null;
        if (up && desired == "stopped")
            spec.PowerState = current.Status == "paused" ? "paused" : "running";
        else if (up && desired != current.Status && current.Status is "running" or "paused")
            spec.PowerState = current.Status;
        else if (!up && desired != "stopped")
            spec.PowerState = "stopped";
    }

    private static void PrintChanges(Cli cli, long vmId, VmUpdateResult result, OptionOrigins origins)
    {
        var changes = result.Changes.Where(c => c.Attribute != "power_state").ToList();
        if (changes.Count == 0)
        {
            cli.Out.WriteLine($"VM {vmId}: nothing changed (the options match its configuration).");
            return;
        }
        var table = new Table("SETTING", "OPTION", "OUTCOME");
        foreach (var change in changes)
        {
            var (text, color) = change.Outcome switch
            {
                AppliedChange.Live => ("applied live", Color.Green),
                AppliedChange.Pending => ("pending: applies at the next start", Color.Yellow),
                AppliedChange.Stored => ("stored: applies at start", Color.None),
                var other => (other, Color.None),
            };
            table.Add((change.Attribute, Color.None), (origins.OptionFor(change.Attribute) ?? "", Color.None), (text, color));
        }
        cli.Out.WriteLine($"VM {vmId} updated:");
        table.Write(cli.Out, Terminal.ColorOut);
        var pending = changes.Count(c => c.Outcome == AppliedChange.Pending);
        if (pending > 0)
            cli.Out.WriteLine($"{pending} change{(pending == 1 ? "" : "s")} pending a restart: kvmctl reboot {vmId} (or shutdown, then start).");
    }

    private static Command Power(Cli cli, string verb, string description, string doing, string done,
        Func<KvmClient, long, TimeSpan?, CancellationToken, Task<Vm>> act, bool withTimeout = false)
    {
        var id = VmId(cli);
        var timeout = Seconds("--timeout", "Seconds to wait for the graceful shutdown before forcing it (default 60).");
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command(verb, description) { id, output }, $"kvmctl {verb} 300");
        if (withTimeout)
            command.Options.Add(timeout);
        command.SetAction((parsed, ct) =>
        {
            var wait = withTimeout ? parsed.GetValue(timeout) : null;
            return cli.RunAsync(parsed, Budget(wait), async (client, token) =>
            {
                var vmId = parsed.GetValue(id);
                Vm vm;
                using (Progress.Start($"{doing} VM {vmId}"))
                    vm = await act(client, vmId, wait is null ? null : TimeSpan.FromSeconds(wait.Value), token);
                return Report(cli, vm, done, output.Get(parsed));
            }, ct);
        });
        return command;
    }

    private static Command Shutdown(Cli cli)
    {
        var id = VmId(cli);
        var timeout = Seconds("--timeout", "Seconds to wait for the guest to power off (default 60).");
        var force = new Option<bool>("--force", "--forceStop") { Description = "Stop the VM by force when the guest has not powered off in time (qm --forceStop)." };
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("shutdown", "Ask the guest to power off (ACPI) and wait for it. Without --force, a guest that ignores ACPI is an error (exit 4).") { id, timeout, force, output },
            "kvmctl shutdown 300", "kvmctl shutdown 300 --timeout 120 --force", "kvmctl shutdown 300 && kvmctl wait 300 --timeout 40");
        command.SetAction((parsed, ct) =>
        {
            var wait = parsed.GetValue(timeout);
            return cli.RunAsync(parsed, Budget(wait), async (client, token) =>
            {
                var vmId = parsed.GetValue(id);
                Vm vm;
                try
                {
                    using (Progress.Start($"shutting down VM {vmId}"))
                        vm = await client.ShutdownVmAsync(vmId, wait is null ? null : TimeSpan.FromSeconds(wait.Value), parsed.GetValue(force), token);
                }
                catch (KvmApiException e) when (e.Type == ProblemTypes.InvalidState && !parsed.GetValue(force))
                {
                    throw Cli.Problem(e, null, hint: $"add --force to stop it when the timeout passes, or stop it now: kvmctl stop {vmId}");
                }
                return Report(cli, vm, "shut down", output.Get(parsed));
            }, ct);
        });
        return command;
    }

    private static Command Wait(Cli cli)
    {
        var id = VmId(cli);
        var timeout = Seconds("--timeout", "Give up after this many seconds (exit 5). Default: wait as long as it takes.");
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("wait", "Wait until a VM has stopped, like qm wait.") { id, timeout, output },
            "kvmctl wait 300", "kvmctl shutdown 300 && kvmctl wait 300 --timeout 40");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var vmId = parsed.GetValue(id);
            var limit = parsed.GetValue(timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : Timeout.InfiniteTimeSpan;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (Progress.Start($"waiting for VM {vmId} to stop"))
            {
                while (true)
                {
                    var vm = (await client.GetVmAsync(vmId, token)).Value;
                    if (vm.Pid is null)
                        return Report(cli, vm, "stopped", output.Get(parsed));
                    if (limit != Timeout.InfiniteTimeSpan && clock.Elapsed >= limit)
                        throw new CliException(ExitCodes.Timeout, $"VM {vmId} is still {vm.Status} after {limit.TotalSeconds:0.#} s.");
                    await Task.Delay(TimeSpan.FromMilliseconds(200), token);
                }
            }
        }, ct));
        return command;
    }

    private static Command Destroy(Cli cli)
    {
        var id = VmId(cli);
        var force = new Option<bool>("--force") { Description = "Stop a running VM at once, then delete it." };
        var command = cli.Examples(new Command("destroy", "Delete a VM with its inline disks and EFI variable store (qm destroy). Refuses a running VM unless --force. Note: virsh destroy means stop; here that is kvmctl stop.") { id, force },
            "kvmctl destroy 300", "kvmctl destroy 300 --force");
        command.Aliases.Add("delete");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, TimeSpan.FromMinutes(10), async (client, token) =>
        {
            var vmId = parsed.GetValue(id);
            try
            {
                using (Progress.Start($"deleting VM {vmId}"))
                    await client.DeleteVmAsync(vmId, parsed.GetValue(force) ? RunningVmDeletion.Force : RunningVmDeletion.Refuse, cancellationToken: token);
            }
            catch (KvmApiException e) when (e.Type == ProblemTypes.InvalidState)
            {
                throw Cli.Problem(e, null, hint: $"stop it first (kvmctl shutdown {vmId}), or delete it anyway: kvmctl destroy {vmId} --force");
            }
            cli.Out.WriteLine($"VM {vmId} destroyed.");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Unlock(Cli cli)
    {
        var id = VmId(cli);
        var command = cli.Examples(new Command("unlock", "Like qm unlock. kvm-agent keeps no persistent VM locks: it holds a per-VM lock in memory only while one request runs, " +
            "so there is nothing to remove. This checks that the VM exists and says so."), "kvmctl unlock 300");
        command.Arguments.Add(id);
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var vm = (await client.GetVmAsync(parsed.GetValue(id), token)).Value;
            cli.Out.WriteLine($"VM {Id(vm)} has no persistent lock: kvm-agent locks a VM in memory only while one request runs, and releases it when the request ends " +
                "(or the agent restarts). A request that waits too long for that lock gets \"busy\" (exit 4); retry it.");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static int Report(Cli cli, Vm vm, string done, Format format)
    {
        if (format != Format.Table)
        {
            Formats.Write(cli.Out, vm, format);
            return ExitCodes.Ok;
        }
        cli.Out.WriteLine($"VM {Id(vm)} {done}; status: {Terminal.Paint(vm.Status ?? "", Terminal.ForStatus(vm.Status), Terminal.ColorOut)}.");
        return ExitCodes.Ok;
    }

    private static TimeSpan Budget(double? seconds) => TimeSpan.FromSeconds(Math.Max(60, (seconds ?? 60) + 120));

    /// <summary>A seconds option (0–3600, fractions allowed).</summary>
    public static Option<double?> Seconds(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "SECONDS",
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s is >= 0 and <= 3600)
                return s;
            result.AddError($"{name} \"{text}\" is not a number of seconds between 0 and 3600.");
            return null;
        },
    };
}
