using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kvm.Agent.Host;

/// <summary>Where the probe looks; tests point it elsewhere.</summary>
public sealed record HostProbeOptions
{
    /// <summary>Directory with the Debian OVMF builds.</summary>
    public string OvmfDirectory { get; init; } = "/usr/share/OVMF";
    /// <summary>procfs mount.</summary>
    public string ProcDirectory { get; init; } = "/proc";
    /// <summary>sysfs mount (kvm module parameters, KSM, hugepages).</summary>
    public string SysDirectory { get; init; } = "/sys";
    /// <summary>The KVM device.</summary>
    public string KvmDevice { get; init; } = "/dev/kvm";
    /// <summary>Where the KVM probe's firmware image is written for the probe's duration.</summary>
    public string TempDirectory { get; init; } = Path.GetTempPath();
    /// <summary>Upper bound for each QEMU query.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Upper bound for the KVM probe guest.</summary>
    public TimeSpan KvmProbeTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>A probe guest that needs longer than this (QEMU start included) counts as too slow for real work.</summary>
    public TimeSpan KvmProbeBudget { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>What the KVM probe found: whether guest code runs usefully under KVM, and why not.</summary>
public sealed record KvmProbeResult(bool Usable, string Detail, TimeSpan Elapsed);

/// <summary>
/// Probes the host once at agent start. The I/O is in <see cref="ProbeAsync"/> and <see cref="ProbeKvmAsync"/>;
/// every parser is a pure function tested against output captured from a real host.
/// </summary>
public static partial class HostProbe
{
    /// <summary>Exit status QEMU reports when the probe guest writes its marker to isa-debug-exit: (value &lt;&lt; 1) | 1.</summary>
    internal const int KvmProbeExitCode = (KvmProbeMarker << 1) | 1;
    private const byte KvmProbeMarker = 0x2A;
    private const int KvmProbePortExits = 0x2000;

    /// <summary>Probes QEMU, KVM, CPUs, memory and firmware; <paramref name="accelOption"/> is the agent's <c>--accel</c> (auto, kvm or tcg).</summary>
    public static async Task<HostFacts> ProbeAsync(ICommandRunner runner, string qemuBinary, string accelOption,
        HostProbeOptions? options = null, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(qemuBinary);
        options ??= new HostProbeOptions();
        if (accelOption is not ("auto" or "kvm" or "tcg"))
            throw new ArgumentException($"--accel must be auto, kvm or tcg, not \"{accelOption}\".", nameof(accelOption));

        // Independent probes, run together: agent start-up waits for the slowest, not for the sum.
        var version = QueryAsync(runner, [qemuBinary, "-version"], options, cancellationToken);
        var machines = QueryAsync(runner, [qemuBinary, "-machine", "help"], options, cancellationToken);
        var cpus = QueryAsync(runner, [qemuBinary, "-cpu", "help"], options, cancellationToken);
        var kvmPresent = CanOpen(options.KvmDevice);
        // A forced TCG agent never uses KVM: skip the guest probe (it costs seconds on nested hosts).
        var kvmProbe = kvmPresent && accelOption != "tcg"
            ? ProbeKvmAsync(runner, qemuBinary, options, cancellationToken)
            : kvmPresent
            ? Task.FromResult(new KvmProbeResult(false, "not probed: the agent runs with --accel tcg.", TimeSpan.Zero))
            : Task.FromResult(new KvmProbeResult(false, $"{options.KvmDevice} is missing or cannot be opened.", TimeSpan.Zero));
        await Task.WhenAll(version, machines, cpus, kvmProbe).ConfigureAwait(false);
        var kvm = await kvmProbe.ConfigureAwait(false);
        log?.Invoke($"KVM usable: {kvm.Usable} ({kvm.Detail})");

        return new HostFacts
        {
            QemuBinary = qemuBinary,
            QemuVersion = ParseVersion(await version.ConfigureAwait(false)),
            KvmPresent = kvmPresent,
            KvmUsable = kvm.Usable,
            DefaultAccelerator = ChooseAccelerator(accelOption, kvmPresent, kvm.Usable),
            CpuCores = ReadOr(Path.Join(options.ProcDirectory, "cpuinfo"), ParseCpuCount, 0) is > 0 and var n ? n : Environment.ProcessorCount,
            MemoryMib = ReadOr(Path.Join(options.ProcDirectory, "meminfo"), ParseMemTotalMib, 0L),
            MachineTypes = ParseMachineTypes(await machines.ConfigureAwait(false)),
            CpuModels = ParseCpuModels(await cpus.ConfigureAwait(false)),
            Ovmf = FindOvmf(options.OvmfDirectory, File.Exists),
            NestedVirtualization = ProbeNested(options.SysDirectory),
            HostNumaNodes = CountNumaNodes(options.SysDirectory),
            HugepageMounts = ReadOr(Path.Join(options.ProcDirectory, "mounts"), ParseHugepageMounts, new Dictionary<string, string>()),
        };
    }

    /// <summary>
    /// Whether KVM runs guest code at a useful speed. QEMU itself starts fine on a nested <c>kvm_pvm</c>
    /// host, so starting it proves nothing; a tiny firmware image (no disk, no OS) does what broke real
    /// guests there: an x87 FNINIT (an emulation failure under kvm_pvm, the instruction OVMF stopped on), then
    /// thousands of port writes (each one a VM exit, cheap on real KVM and slow when nested), then a write
    /// to isa-debug-exit that makes QEMU exit with a known status. Real KVM finishes in about the time QEMU
    /// takes to start; anything else is an internal error, a timeout or a run over budget.
    /// </summary>
    public static async Task<KvmProbeResult> ProbeKvmAsync(ICommandRunner runner, string qemuBinary, HostProbeOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        options ??= new HostProbeOptions();
        var image = Path.Join(options.TempDirectory, $"kvm-agent-probe-{Environment.ProcessId}.bin");
        await File.WriteAllBytesAsync(image, KvmProbeFirmware(), cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        try
        {
            var result = await runner.RunAsync(KvmProbeArgv(qemuBinary, image), options.KvmProbeTimeout, cancellationToken).ConfigureAwait(false);
            return ClassifyKvmProbe(result, clock.Elapsed, options.KvmProbeBudget);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return ClassifyKvmProbe(null, clock.Elapsed, options.KvmProbeBudget);
        }
        finally
        {
            File.Delete(image);
        }
    }

    /// <summary>The probe's QEMU argv: the smallest machine that can run the probe firmware under KVM.</summary>
    public static IReadOnlyList<string> KvmProbeArgv(string qemuBinary, string firmwareImage) =>
    [
        qemuBinary, "-machine", "pc,accel=kvm", "-nodefaults", "-no-user-config", "-display", "none", "-m", "16",
        "-bios", firmwareImage, "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
    ];

    /// <summary>
    /// The probe firmware: 64 KiB (QEMU wants BIOS images in 64 KiB multiples) mapped below 1 MiB, entered in
    /// real mode at the reset vector, which jumps to the code at its start.
    /// </summary>
    public static byte[] KvmProbeFirmware()
    {
        var image = new byte[0x10000];
        Array.Fill(image, (byte)0xF4); // hlt everywhere else
        byte[] code =
        [
            0x9B, 0xDB, 0xE3,                                    // fninit
            0xB9, KvmProbePortExits & 0xFF, KvmProbePortExits >> 8, // mov cx, exits
            0xE6, 0x80,                                          // out 0x80, al (the POST-code port: a VM exit, no effect)
            0xE2, 0xFC,                                          // loop back to the out
            0xB0, KvmProbeMarker,                                // mov al, marker
            0xE6, 0xF4,                                          // out 0xf4, al (isa-debug-exit: QEMU exits)
            0xF4,                                                // hlt
            0xEB, 0xFD,                                          // jmp back to hlt
        ];
        code.CopyTo(image, 0);
        byte[] reset = [0xEA, 0x00, 0x00, 0x00, 0xF0];          // jmp far f000:0000
        reset.CopyTo(image, 0xFFF0);
        return image;
    }

    /// <summary>Reads the probe's outcome; <paramref name="result"/> is null when it timed out.</summary>
    public static KvmProbeResult ClassifyKvmProbe(CommandResult? result, TimeSpan elapsed, TimeSpan budget)
    {
        var ms = (long)elapsed.TotalMilliseconds;
        if (result is null)
            return new(false, $"the probe guest did not finish within {ms} ms (on nested kvm_pvm hosts KVM stops it with an emulation failure and QEMU waits).", elapsed);
        if (result.StdErr.Contains("KVM internal error", StringComparison.Ordinal))
        {
            var kind = result.StdErr.Contains("emulation failure", StringComparison.Ordinal) ? "an emulation failure" : "an internal error";
            return new(false, $"KVM stopped the probe guest with {kind} (typical of nested kvm_pvm hosts).", elapsed);
        }
        if (result.ExitCode != KvmProbeExitCode)
        {
            var first = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(l => !l.Contains("warning", StringComparison.Ordinal));
            return new(false, $"QEMU exited with status {result.ExitCode}" + (first is null ? "." : $": {first}"), elapsed);
        }
        return elapsed <= budget
            ? new(true, $"the probe guest ran under KVM in {ms} ms.", elapsed)
            : new(false, $"the probe guest ran under KVM but took {ms} ms (budget {(long)budget.TotalMilliseconds} ms): too slow for guests.", elapsed);
    }

    /// <summary>The default accelerator for VMs that leave <c>kvm</c> unset.</summary>
    public static string ChooseAccelerator(string accelOption, bool kvmPresent, bool kvmUsable) => accelOption switch
    {
        "tcg" => "tcg",
        "kvm" => kvmPresent ? "kvm" : throw new InvalidOperationException("--accel kvm was given, but /dev/kvm is missing or cannot be opened."),
        _ => kvmPresent && kvmUsable ? "kvm" : "tcg",
    };

    /// <summary>Parses <c>qemu-system-x86_64 -version</c>: "QEMU emulator version 7.2.22 (Debian …)".</summary>
    public static Version ParseVersion(string output)
    {
        var match = VersionRegex().Match(output ?? "");
        if (!match.Success)
            throw new FormatException($"no QEMU version in \"{output?.Split('\n')[0]}\".");
        return new Version(int.Parse(match.Groups[1].ValueSpan, CultureInfo.InvariantCulture),
            int.Parse(match.Groups[2].ValueSpan, CultureInfo.InvariantCulture),
            match.Groups[3].Success ? int.Parse(match.Groups[3].ValueSpan, CultureInfo.InvariantCulture) : 0);
    }

    /// <summary>Parses <c>-machine help</c>: the first word of each line after the header (aliases such as <c>q35</c> included).</summary>
    public static IReadOnlyList<string> ParseMachineTypes(string output) =>
    [
        .. (output ?? "").Split('\n')
            .Where(l => l.Length > 0 && !char.IsWhiteSpace(l[0]) && !l.StartsWith("Supported machines", StringComparison.Ordinal))
            .Select(l => l.Split(' ', 2)[0].Trim())
            .Where(n => n.Length > 0)
            .Distinct(StringComparer.Ordinal),
    ];

    /// <summary>Parses <c>-cpu help</c>: the names on its "x86 NAME  description" lines (the flag list after them is not models).</summary>
    public static IReadOnlyList<string> ParseCpuModels(string output) =>
    [
        .. (output ?? "").Split('\n')
            .Select(l => CpuLineRegex().Match(l))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .Distinct(StringComparer.Ordinal),
    ];

    /// <summary>Parses /proc/meminfo's MemTotal into MiB.</summary>
    public static long ParseMemTotalMib(string meminfo)
    {
        var match = MemTotalRegex().Match(meminfo ?? "");
        return match.Success ? long.Parse(match.Groups[1].ValueSpan, CultureInfo.InvariantCulture) / 1024 : 0;
    }

    /// <summary>Counts the "processor" entries of /proc/cpuinfo: the host's logical CPUs, whatever this process's affinity.</summary>
    public static int ParseCpuCount(string cpuinfo) => (cpuinfo ?? "").Split('\n').Count(l => ProcessorRegex().IsMatch(l));

    /// <summary>The Debian OVMF builds present in <paramref name="directory"/>.</summary>
    public static OvmfFiles FindOvmf(string directory, Func<string, bool> exists)
    {
        ArgumentNullException.ThrowIfNull(exists);
        string? Find(string name)
        {
            var path = Path.Join(directory, name);
            return exists(path) ? path : null;
        }
        return new OvmfFiles
        {
            Code4M = Find("OVMF_CODE_4M.fd"),
            Vars4M = Find("OVMF_VARS_4M.fd"),
            Code4MSecure = Find("OVMF_CODE_4M.secboot.fd"),
            Vars4MEnrolled = Find("OVMF_VARS_4M.ms.fd"),
            Code2M = Find("OVMF_CODE.fd"),
            Vars2M = Find("OVMF_VARS.fd"),
        };
    }

    private static async Task<string> QueryAsync(ICommandRunner runner, IReadOnlyList<string> argv, HostProbeOptions options, CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync(argv, options.CommandTimeout, cancellationToken).ConfigureAwait(false);
        return result.Ok ? result.StdOut : throw new InvalidOperationException($"{string.Join(' ', argv)} failed with status {result.ExitCode}: {result.StdErr.Trim()}");
    }

    private static bool CanOpen(string device)
    {
        try
        {
            using var stream = new FileStream(device, FileMode.Open, FileAccess.ReadWrite);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static T ReadOr<T>(string path, Func<string, T> parse, T fallback)
    {
        try
        {
            return parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return fallback;
        }
    }

    [GeneratedRegex(@"version (\d+)\.(\d+)(?:\.(\d+))?")]
    private static partial Regex VersionRegex();

    [GeneratedRegex(@"^x86 +(\S+)")]
    private static partial Regex CpuLineRegex();

    [GeneratedRegex(@"^MemTotal:\s+(\d+) kB", RegexOptions.Multiline)]
    private static partial Regex MemTotalRegex();

    [GeneratedRegex(@"^processor\s*:")]
    private static partial Regex ProcessorRegex();
}
