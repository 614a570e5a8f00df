using Kvm.Agent.Host;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Agent.Qemu;

/// <summary>The outcome of turning a spec into an argv: the argv, or the reasons it cannot be built.</summary>
public sealed record QemuBuildResult(IReadOnlyList<string> Args, IReadOnlyList<ValidationError> Errors)
{
    /// <summary>No errors: <see cref="Args"/> is complete.</summary>
    public bool Ok => Errors.Count == 0;
}

/// <summary>
/// Turns a VM spec into the exact <c>qemu-system-x86_64</c> argv, purely: no I/O, no clock, no randomness.
/// Everything host-specific comes in as <see cref="HostFacts"/> and <see cref="VmPaths"/>, so the same
/// inputs always give the same argv and the golden tests pin it. One partial file per concern.
/// </summary>
public static partial class QemuCommand
{
    // PCI addresses. Auto-assigned addresses follow argv order, so adding a disk would move every device
    // after it and rename the guest's NICs (enp0sN). The singletons and the first eight NICs therefore
    // get fixed slots on the root bus, and they come first in argv so auto-assigned devices (controllers,
    // disks, further NICs) only fill the slots left over. Slot 0 is the host bridge; slot 1 is PIIX3 on pc
    // and free on q35; 0x1f is ICH9's on q35.
    internal const int VgaSlot = 0x02;
    internal const int BalloonSlot = 0x03;
    internal const int UsbSlot = 0x04;
    internal const int FirstNicSlot = 0x12;
    internal const int PinnedNics = 8;

    internal static string PciAddress(int slot) => "0x" + slot.ToString("x", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Bootindex of the first device in the boot order; leaves room for devices put in front later.</summary>
    internal const int FirstBootIndex = 100;

    /// <summary>The argv (argv[0] is <see cref="HostFacts.QemuBinary"/>); throws <see cref="QemuBuildException"/> when the spec cannot run here.</summary>
    public static IReadOnlyList<string> Build(VmSpec spec, HostFacts facts, VmPaths paths)
    {
        var result = TryBuild(spec, facts, paths);
        return result.Ok ? result.Args : throw new QemuBuildException(result.Errors);
    }

    /// <summary>Like <see cref="Build"/>, but returns the errors (for plan-time checks) instead of throwing.</summary>
    public static QemuBuildResult TryBuild(VmSpec spec, HostFacts facts, VmPaths paths)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(facts);
        ArgumentNullException.ThrowIfNull(paths);

        // The builder indexes by slot names and trusts enum values; an invalid spec would only produce
        // noise after the real problem, so model validation is the first gate.
        var invalid = Validator.Validate(spec);
        if (invalid.Count > 0)
            return new QemuBuildResult([], invalid);

        var c = new Context(spec, Defaults.Apply(spec), facts, paths);
        c.Arg(facts.QemuBinary);
        Identity(c);
        Machine(c);
        Cpu(c);
        Memory(c);
        Clock(c);
        Firmware(c);
        Tpm(c);
        BootAndKernel(c);
        Process(c);
        Display(c);
        Balloon(c);
        GuestAgent(c);
        Devices(c);
        HotplugPorts(c);
        Nics(c);
        Storage(c);
        Passthrough(c);
        c.Arg("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        c.CheckArgv();
        return c.Errors.Count > 0 ? new QemuBuildResult([], c.Errors) : new QemuBuildResult(c.Args, []);
    }

    private static void Identity(Context c)
    {
        c.Arg("-name", QemuOptions.Of("guest=" + QemuOptions.Escape(c.Safe(c.Vm.Name!, Attr("name")))).Add("debug-threads", true).ToString());
        c.Arg("-nodefaults");
        c.Arg("-no-user-config");
    }

    internal static AttrPath Attr(string name) => AttrPath.Root.Attr(name);

    /// <summary>State shared by the sections while one argv is built.</summary>
    internal sealed class Context(VmSpec user, VmSpec vm, HostFacts facts, VmPaths paths)
    {
        private readonly List<string> _args = [];
        private readonly List<ValidationError> _errors = [];

        /// <summary>The spec as the user wrote it (nulls kept: "set" vs "defaulted" matters for some rules).</summary>
        public VmSpec User { get; } = user;
        /// <summary>The effective spec, defaults filled.</summary>
        public VmSpec Vm { get; } = vm;
        public HostFacts Facts { get; } = facts;
        public VmPaths Paths { get; } = paths;
        public List<string> Args => _args;
        public IReadOnlyList<ValidationError> Errors => _errors;

        /// <summary>"kvm" or "tcg", set by the machine section.</summary>
        public string Accelerator { get; set; } = "tcg";
        public bool Kvm => Accelerator == "kvm";
        public bool Q35 => Vm.Machine!.Contains("q35", StringComparison.Ordinal);
        public bool Windows => Vm.OsType == "windows";

        /// <summary>Slot → bootindex, filled before any device is written.</summary>
        public Dictionary<string, int> BootIndex { get; } = new(StringComparer.Ordinal);

        public void Arg(params string[] values) => _args.AddRange(values);

        public void Error(AttrPath path, string detail) => _errors.Add(new ValidationError(path.ToString(), detail));

        /// <summary>A value QEMU can carry; records an error (and returns it unchanged) when it cannot.</summary>
        public string Safe(string value, AttrPath at)
        {
            if (!QemuOptions.IsSafe(value))
                Error(at, $"\"{Validator.Printable(value)}\" contains control characters, which QEMU's command line cannot carry.");
            return value;
        }

        /// <summary>
        /// A host file name handed to QEMU: absolute (so no "json:" or "nbd:" pseudo-protocol can sneak in)
        /// and free of control characters.
        /// </summary>
        public string File(string value, AttrPath at, string what)
        {
            if (!value.StartsWith('/'))
                Error(at, $"the {what} path \"{Validator.Printable(value)}\" is not absolute.");
            return Safe(value, at);
        }

        /// <summary>Defence in depth: nothing with a control character leaves the builder, whatever the section forgot.</summary>
        public void CheckArgv()
        {
            if (_errors.Count == 0 && _args.FirstOrDefault(a => !QemuOptions.IsSafe(a)) is { } bad)
                Error(AttrPath.Root, $"internal: argument \"{Validator.Printable(bad)}\" contains control characters.");
        }
    }
}
