using System.CommandLine;
using System.Globalization;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Cli.Options;

/// <summary>
/// The qm-style VM options shared by <c>create</c> and <c>set</c>, and how each maps onto <see cref="VmSpec"/>.
/// Proxmox spellings are accepted beside ours (<c>--ostype l26</c>, <c>--bios ovmf</c>, <c>--scsihw</c>); each
/// value set is recorded in <see cref="OptionOrigins"/> so errors name the option the user typed.
/// </summary>
public sealed class VmOptions
{
    /// <summary>--name.</summary>
    public Option<string?> Name { get; } = new("--name") { Description = "VM name (letters, digits, '-', '.'). create: defaults to vm-ID.", HelpName = "NAME" };
    /// <summary>--description.</summary>
    public Option<string?> Description { get; } = new("--description") { Description = "Free-text description.", HelpName = "TEXT" };
    /// <summary>--tags.</summary>
    public Option<string?> Tags { get; } = new("--tags") { Description = "Tags, separated by ';' or ',' (qm style: web;prod).", HelpName = "TAGS" };
    /// <summary>--memory.</summary>
    public Option<long?> Memory { get; } = Number<long>("--memory", "Memory in MiB.", "MiB");
    /// <summary>--balloon.</summary>
    public Option<long?> Balloon { get; } = Number<long>("--balloon", "Balloon target in MiB; 0 removes the balloon device (qm semantics).", "MiB");
    /// <summary>--cores.</summary>
    public Option<int?> Cores { get; } = Number<int>("--cores", "Cores per socket.", "N");
    /// <summary>--sockets.</summary>
    public Option<int?> Sockets { get; } = Number<int>("--sockets", "CPU sockets.", "N");
    /// <summary>--threads.</summary>
    public Option<int?> Threads { get; } = Number<int>("--threads", "Threads per core.", "N");
    /// <summary>--cpu.</summary>
    public Option<string?> Cpu { get; } = new("--cpu") { Description = "CPU model (host, max, x86-64-v2-AES, …), optionally with flags: cputype=max,flags=+aes;-hypervisor.", HelpName = "MODEL" };
    /// <summary>--machine.</summary>
    public Option<string?> Machine { get; } = new("--machine") { Description = "Machine type: q35, pc, pc-q35-X.Y, pc-i440fx-X.Y.", HelpName = "TYPE" };
    /// <summary>--ostype.</summary>
    public Option<string?> OsType { get; } = new("--ostype", "--os-type") { Description = "Guest OS: linux, windows, other, or a Proxmox value (l26, l24, win11, win10, …, solaris, other).", HelpName = "TYPE" };
    /// <summary>--bios.</summary>
    public Option<string?> Bios { get; } = new("--bios") { Description = "Firmware: seabios (bios) or ovmf (uefi).", HelpName = "seabios|ovmf" };
    /// <summary>--scsihw.</summary>
    public Option<string?> ScsiHw { get; } = new("--scsihw") { Description = "SCSI controller: virtio-scsi-single, virtio-scsi-pci, lsi, lsi53c810, megasas, pvscsi.", HelpName = "MODEL" };
    /// <summary>--disk.</summary>
    public Option<string[]> Disk { get; } = Repeated("--disk", "Disk, repeatable: SLOT=SIZE[,format=qcow2][,cache=…][,discard=on][,ssd=1][,iothread=1] or SLOT=volume:POOL/NAME. Slots ide0-3, sata0-5, scsi0-30, virtio0-15. qm's --scsi0 16G works too.", "SLOT=SPEC");
    /// <summary>--net.</summary>
    public Option<string[]> Net { get; } = Repeated("--net", "Network interface, repeatable: netN=MODEL[,bridge=BR][,mac=MAC][,queues=N][,mtu=N]. Without a bridge: user-mode NAT. qm's --net0 virtio,bridge=br0 works too.", "netN=SPEC");
    /// <summary>--cdrom.</summary>
    public Option<string[]> Cdrom { get; } = Repeated("--cdrom", "CD-ROM drive, repeatable: [SLOT=]POOL/ISO or SLOT=none for an empty drive (slot defaults to ide2).", "[SLOT=]ISO");
    /// <summary>--boot.</summary>
    public Option<string?> Boot { get; } = new("--boot") { Description = "Boot order: order=scsi0;ide2;net0 (or scsi0,ide2).", HelpName = "order=SLOTS" };
    /// <summary>--vga.</summary>
    public Option<string?> Vga { get; } = new("--vga") { Description = "Display: std, cirrus, vmware, qxl, virtio, none, serial0; optionally ,memory=MiB.", HelpName = "TYPE" };
    /// <summary>--kernel.</summary>
    public Option<string?> Kernel { get; } = new("--kernel") { Description = "Direct kernel boot: absolute path of a kernel on the agent's host.", HelpName = "PATH" };
    /// <summary>--initrd.</summary>
    public Option<string?> Initrd { get; } = new("--initrd") { Description = "Direct kernel boot: absolute path of an initrd on the agent's host.", HelpName = "PATH" };
    /// <summary>--append.</summary>
    public Option<string?> Append { get; } = new("--append", "--cmdline") { Description = "Direct kernel boot: kernel command line.", HelpName = "CMDLINE" };
    /// <summary>--kvm.</summary>
    public Option<bool?> Kvm { get; } = Flag("--kvm", "Use KVM (1) or TCG emulation (0); unset: the agent's default.");
    /// <summary>--acpi.</summary>
    public Option<bool?> Acpi { get; } = Flag("--acpi", "ACPI (1/0); needed for graceful shutdown.");
    /// <summary>--tablet.</summary>
    public Option<bool?> Tablet { get; } = Flag("--tablet", "USB tablet pointer (1/0).");
    /// <summary>--localtime.</summary>
    public Option<bool?> Localtime { get; } = Flag("--localtime", "Real-time clock in local time (1) or UTC (0).");
    /// <summary>--protection.</summary>
    public Option<bool?> Protection { get; } = Flag("--protection", "Protect the VM from deletion (1/0).");

    /// <summary>Every option, in help order.</summary>
    public IReadOnlyList<Option> All =>
    [
        Name, Memory, Cores, Sockets, Threads, Cpu, Disk, Net, Cdrom, Boot, OsType, Bios, Machine, ScsiHw, Vga,
        Balloon, Kernel, Initrd, Append, Kvm, Acpi, Tablet, Localtime, Protection, Description, Tags,
    ];

    /// <summary>Options whose value is a boolean (qm writes them as 1/0).</summary>
    public IEnumerable<Option> Flags => [Kvm, Acpi, Tablet, Localtime, Protection];

    /// <summary>
    /// Applies every given option to <paramref name="spec"/> (which may be a VM's current spec: devices given again are
    /// merged key by key). Syntax errors are collected and thrown together as one usage error.
    /// </summary>
    public OptionOrigins Apply(ParseResult parsed, VmSpec spec)
    {
        var origins = new OptionOrigins();
        var errors = new List<string>();
        var root = AttrPath.Root;

        void Set<T>(Option<T> option, string attribute, Action<T> apply, Func<T, string>? show = null)
        {
            if (parsed.GetResult(option) is null || parsed.GetValue(option) is not { } value)
                return;
            var typed = $"{option.Name} {show?.Invoke(value) ?? Convert.ToString(value, CultureInfo.InvariantCulture)}";
            try
            {
                apply(value);
                origins.Record(PathOf(attribute), typed);
            }
            catch (FormatException e)
            {
                errors.Add($"{typed}: {e.Message}");
            }
        }

        Set(Name, "name", v => spec.Name = v);
        Set(Description, "description", v => spec.Description = v);
        Set(Tags, "tags", v => spec.Tags = [.. v.Split([';', ',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]);
        Set(Memory, "memory.size_mib", v => (spec.Memory ??= new()).SizeMib = v);
        Set(Balloon, "memory.balloon", v =>
        {
            var memory = spec.Memory ??= new();
            memory.Balloon = v == 0 ? new BalloonSpec { Enabled = false } : new BalloonSpec { Enabled = true, MinMib = v };
        });
        Set(Cores, "cpu.cores", v => (spec.Cpu ??= new()).Cores = v);
        Set(Sockets, "cpu.sockets", v => (spec.Cpu ??= new()).Sockets = v);
        Set(Threads, "cpu.threads", v => (spec.Cpu ??= new()).Threads = v);
        Set(Cpu, "cpu", v => ApplyCpu(spec.Cpu ??= new(), v));
        Set(Machine, "machine", v => spec.Machine = v);
        Set(OsType, "os_type", v => spec.OsType = MapOsType(v));
        Set(Bios, "firmware.type", v => (spec.Firmware ??= new()).Type = v.ToLowerInvariant() switch
        {
            "seabios" or "bios" => "bios",
            "ovmf" or "uefi" => "uefi",
            _ => throw new FormatException("expected seabios or ovmf (bios or uefi)."),
        });
        Set(ScsiHw, "scsi_controller", v => spec.ScsiController = v);
        Set(Boot, "boot_order", v => spec.BootOrder = ParseBootOrder(v));
        Set(Vga, "display", v => ApplyVga(spec.Display ??= new(), v));
        Set(Kernel, "kernel", v => spec.Kernel = v);
        Set(Initrd, "initrd", v => spec.Initrd = v);
        Set(Append, "cmdline", v => spec.Cmdline = v);
        Set(Kvm, "kvm", v => spec.Kvm = v, Show);
        Set(Acpi, "acpi", v => spec.Acpi = v, Show);
        Set(Tablet, "tablet", v => spec.Tablet = v, Show);
        Set(Localtime, "rtc_base", v => spec.RtcBase = v == true ? "localtime" : "utc", Show);
        Set(Protection, "protection", v => spec.Protection = v, Show);

        Devices(parsed, Disk, "disks", "scsi0=16G", null, origins, errors, (slot, text) =>
        {
            var given = DeviceSyntax.Disk(text);
            var disks = spec.Disks ??= [];
            disks[slot] = disks.TryGetValue(slot, out var current) ? MergeDisk(current, given) : given;
        });
        Devices(parsed, Net, "network_interfaces", "net0=virtio,bridge=br0", null, origins, errors, (slot, text) =>
        {
            var given = DeviceSyntax.Nic(text);
            var nics = spec.NetworkInterfaces ??= [];
            nics[slot] = nics.TryGetValue(slot, out var current) ? Merge(current, given) : given;
        });
        Devices(parsed, Cdrom, "cdroms", "ide2=default/debian.iso", "ide2", origins, errors, (slot, text) =>
            (spec.Cdroms ??= [])[slot] = DeviceSyntax.Cdrom(text));

        if (errors.Count > 0)
            throw CliException.Usage("invalid options; nothing was sent to the agent:", errors);
        return origins;
    }

    private static void Devices(ParseResult parsed, Option<string[]> option, string attribute, string example, string? defaultSlot,
        OptionOrigins origins, List<string> errors, Action<string, string> apply)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var text in parsed.GetValue(option) ?? [])
        {
            var typed = $"{option.Name} {text}";
            try
            {
                var (slot, rest) = DeviceSyntax.SplitSlot(text, example, defaultSlot);
                if (!seen.Add(slot))
                    throw new FormatException($"slot {slot} is given twice.");
                apply(slot, rest);
                origins.Record(AttrPath.Root.Attr(attribute).Key(slot), typed);
            }
            catch (FormatException e)
            {
                errors.Add($"{typed}: {e.Message}");
            }
        }
    }

    // A disk given again keeps what it does not mention; switching between inline and volume drops the other kind's keys.
    private static DiskSpec MergeDisk(DiskSpec current, DiskSpec given)
    {
        var merged = Merge(current, given);
        if (given.VolumeId is not null)
        {
            merged.SizeGib = given.SizeGib;
            merged.Format = given.Format;
            merged.Pool = given.Pool;
            merged.Preallocation = given.Preallocation;
        }
        else if (given.SizeGib is not null)
        {
            merged.VolumeId = null;
        }
        return merged;
    }

    private static T Merge<T>(T current, T given) where T : class
    {
        foreach (var attribute in Schemas.For<T>().Attributes)
            if (attribute.GetValue(given) is { } value)
                attribute.Property.SetValue(current, value);
        return current;
    }

    private static void ApplyCpu(CpuSpec cpu, string text)
    {
        var (positional, pairs) = DeviceSyntax.Items(text);
        if (positional is not null)
            cpu.Model = positional;
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "cputype" or "model": cpu.Model = value; break;
                case "flags": cpu.Flags = [.. value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]; break;
                default: throw new FormatException($"unknown CPU option \"{key}\"; known: cputype, flags.");
            }
        }
    }

    private static void ApplyVga(DisplaySpec display, string text)
    {
        var (positional, pairs) = DeviceSyntax.Items(text);
        if (positional is not null)
            display.Vga = positional;
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "type": display.Vga = value; break;
                case "memory": display.MemoryMib = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : throw new FormatException($"memory=\"{value}\" is not a whole number of MiB."); break;
                default: throw new FormatException($"unknown display option \"{key}\"; known: type, memory.");
            }
        }
    }

    /// <summary><c>order=scsi0;ide2;net0</c>, <c>scsi0;ide2</c> or <c>scsi0,ide2</c>.</summary>
    public static List<string> ParseBootOrder(string text)
    {
        var order = text.StartsWith("order=", StringComparison.Ordinal) ? text["order=".Length..] : text;
        if (order.Contains('=', StringComparison.Ordinal))
            throw new FormatException("expected order=SLOT;SLOT, for example order=scsi0;ide2;net0.");
        var slots = order.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return slots.Length > 0 ? [.. slots] : throw new FormatException("lists no slots.");
    }

    /// <summary>Proxmox's ostype values onto the model's linux/windows/other.</summary>
    public static string MapOsType(string value) => value.ToLowerInvariant() switch
    {
        "linux" or "l26" or "l24" => "linux",
        "windows" or "win11" or "win10" or "win8" or "win7" or "wvista" or "w2k8" or "w2k3" or "w2k" or "wxp" => "windows",
        "other" or "solaris" => "other",
        _ => throw new FormatException("expected linux, windows or other (or a Proxmox ostype: l26, l24, win11, win10, win8, win7, wvista, w2k8, w2k3, w2k, wxp, solaris, other)."),
    };

    private static AttrPath PathOf(string dotted) => dotted.Split('.').Aggregate(AttrPath.Root, (path, name) => path.Attr(name));

    private static string Show(bool? value) => value == true ? "1" : "0";

    private static Option<T?> Number<T>(string name, string description, string unit) where T : struct, IParsable<T> => new(name)
    {
        Description = description,
        HelpName = unit,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (T.TryParse(text, CultureInfo.InvariantCulture, out var value))
                return value;
            result.AddError($"{name} \"{text}\" is not a whole number{(unit == "N" ? "" : $" of {unit}")}.");
            return null;
        },
    };

    private static Option<string[]> Repeated(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private static Option<bool?> Flag(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "1|0",
        Arity = ArgumentArity.ZeroOrOne,
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
                return true;
            try
            {
                return DeviceSyntax.Bool(name, result.Tokens[0].Value);
            }
            catch (FormatException)
            {
                result.AddError($"{name} \"{result.Tokens[0].Value}\" is not 1/0, on/off or true/false.");
                return null;
            }
        },
    };
}
