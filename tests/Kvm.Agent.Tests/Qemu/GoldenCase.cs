using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// One golden case: <c>cases/NAME.json</c> holds <c>{ "spec": VmSpec, "facts": overrides, "paths": overrides }</c>.
/// Facts default to the captured host data (QEMU 7.2, 2 cores, Debian OVMF); paths default to
/// <c>/run/kvm/100/…</c>, with disks, ISOs, taps and MACs derived from the spec the way the agent resolves them.
/// </summary>
internal sealed record GoldenCase(string Name, VmSpec Spec, HostFacts Facts, VmPaths Paths)
{
    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static string SourceDirectory { get; } = FindSourceDirectory();
    public static string CasesDirectory => Path.Join(SourceDirectory, "cases");
    public static string HostDataDirectory => Path.Join(SourceDirectory, "HostData");

    public static IEnumerable<string> Names() =>
        Directory.EnumerateFiles(CasesDirectory, "*.json").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;

    public static GoldenCase Load(string name)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Join(CasesDirectory, name + ".json")))!.AsObject();
        var spec = JsonSerializer.Deserialize<VmSpec>(root["spec"]!.ToJsonString(), ModelJson.Options)!;
        var facts = MergeFacts(root["facts"]?.AsObject());
        var paths = ResolvePaths(spec, root["paths"]?.AsObject());
        return new GoldenCase(name, spec, facts, paths);
    }

    public static HostFacts DefaultFacts { get; } = new()
    {
        QemuBinary = "/usr/bin/qemu-system-x86_64",
        QemuVersion = new Version(7, 2, 0),
        KvmPresent = true,
        KvmUsable = true,
        DefaultAccelerator = "kvm",
        CpuCores = 2,
        MemoryMib = 8192,
        MachineTypes = HostProbe.ParseMachineTypes(File.ReadAllText(Path.Join(HostDataDirectory, "machine-help.txt"))),
        CpuModels = HostProbe.ParseCpuModels(File.ReadAllText(Path.Join(HostDataDirectory, "cpu-help.txt"))),
        Ovmf = HostProbe.FindOvmf("/usr/share/OVMF", _ => true) with { },
    };

    private static HostFacts MergeFacts(JsonObject? overrides)
    {
        var facts = JsonSerializer.SerializeToNode(DefaultFacts, SnakeCase)!.AsObject();
        foreach (var (key, value) in overrides ?? [])
        {
            if (key == "ovmf" && value is JsonObject ovmf)
            {
                foreach (var (file, path) in ovmf)
                    facts["ovmf"]![file] = path?.DeepClone();
            }
            else
            {
                if (!facts.ContainsKey(key))
                    throw new InvalidDataException($"unknown facts key \"{key}\".");
                facts[key] = value?.DeepClone();
            }
        }
        return facts.Deserialize<HostFacts>(SnakeCase)!;
    }

    private sealed record PathOverrides
    {
        public string? RunDir { get; init; }
        public string? QmpSocket { get; init; }
        public string? PidFile { get; init; }
        public string? SerialLog { get; init; }
        public string? EfiVars { get; init; }
        public Dictionary<string, DiskFile>? Disks { get; init; }
        public Dictionary<string, string?>? Cdroms { get; init; }
        public Dictionary<string, string>? Taps { get; init; }
        public Dictionary<string, string>? Macs { get; init; }
        public string? CloudInitSeed { get; init; }
        public string? TpmSocket { get; init; }
        public Dictionary<string, List<string>>? PciFunctions { get; init; }
    }

    /// <summary>What the agent would resolve for the spec, then the case's overrides on top.</summary>
    private static VmPaths ResolvePaths(VmSpec spec, JsonObject? overrides)
    {
        var o = overrides?.Deserialize<PathOverrides>(SnakeCase) ?? new PathOverrides();
        var id = spec.VmId ?? 100;
        var run = o.RunDir ?? $"/run/kvm/{id}";
        var disks = new Dictionary<string, DiskFile>();
        foreach (var (slot, disk) in spec.Disks ?? [])
        {
            if (disk.HostDevice is { } device)
            {
                disks[slot] = new DiskFile(device, "raw", HostDevice: true);
            }
            else if (disk.VolumeId is { } volume)
            {
                var (pool, file) = SplitVolume(volume);
                var ext = Path.GetExtension(file).TrimStart('.');
                disks[slot] = new DiskFile($"/var/lib/kvm/pools/{pool}/{file}", ext is "vmdk" or "qcow2" ? ext : "raw");
            }
            else
            {
                var format = disk.Format ?? "qcow2";
                disks[slot] = new DiskFile($"/var/lib/kvm/pools/{disk.Pool ?? "default"}/vm-{id}-{slot}.{format}", format);
            }
        }
        var cdroms = new Dictionary<string, string?>();
        foreach (var (slot, cdrom) in spec.Cdroms ?? [])
            cdroms[slot] = cdrom.VolumeId is { } v ? $"/var/lib/kvm/pools/{SplitVolume(v).Pool}/{SplitVolume(v).File}" : null;
        var taps = new Dictionary<string, string>();
        var macs = new Dictionary<string, string>();
        foreach (var (slot, nic) in spec.NetworkInterfaces ?? [])
        {
            if (nic.Bridge is not null)
                taps[slot] = $"tap{id}i{QemuCommand.ParseSlot(slot).Index}";
            macs[slot] = nic.Mac ?? MacAddress.Generate(id, slot);
        }
        foreach (var (k, v) in o.Disks ?? []) disks[k] = v;
        foreach (var (k, v) in o.Cdroms ?? []) cdroms[k] = v;
        foreach (var (k, v) in o.Taps ?? []) taps[k] = v;
        foreach (var (k, v) in o.Macs ?? []) macs[k] = v;
        // A whole device (01:00) resolves like a typical GPU: its VGA function and its audio function.
        var functions = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var (slot, pci) in spec.PciDevices ?? [])
            if (pci.Address is not null && pci.AllFunctions())
                functions[slot] = [pci.FullAddress() + ".0", pci.FullAddress() + ".1"];
        foreach (var (k, v) in o.PciFunctions ?? []) functions[k] = v;
        var uefi = spec.Firmware?.Type == "uefi";
        return new VmPaths
        {
            RunDir = run,
            QmpSocket = o.QmpSocket ?? $"{run}/qmp.sock",
            PidFile = o.PidFile ?? $"{run}/qemu.pid",
            SerialLog = o.SerialLog ?? $"{run}/serial.log",
            EfiVars = o.EfiVars ?? (uefi ? $"/var/lib/kvm/pools/default/vm-{id}-efivars.fd" : null),
            TpmSocket = o.TpmSocket ?? (spec.Tpm is null ? null : $"{run}/swtpm.sock"),
            CloudInitSeed = o.CloudInitSeed ?? (spec.CloudInit is null ? null : $"/var/lib/kvm-agent/cloud-init/{id}-0123456789ab-89abcdef.iso"),
            Disks = disks,
            Cdroms = cdroms,
            Taps = taps,
            Macs = macs,
            PciFunctions = functions,
        };
    }

    private static (string Pool, string File) SplitVolume(string volume)
    {
        var slash = volume.IndexOf('/', StringComparison.Ordinal);
        return (volume[..slash], volume[(slash + 1)..]);
    }

    private static string FindSourceDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Join(dir.FullName, "tests", "Kvm.Agent.Tests", "Qemu");
            if (Directory.Exists(Path.Join(candidate, "cases")))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/Kvm.Agent.Tests/Qemu/cases not found above " + AppContext.BaseDirectory);
    }
}
