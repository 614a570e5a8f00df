using Kvm.Agent.Host;
using Kvm.Model;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>Block node of the read-only OVMF code (attached to the machine as pflash0).</summary>
    public const string EfiCodeNode = "drive-efi-code";
    /// <summary>Block node of the VM's EFI variable store (pflash1).</summary>
    public const string EfiVarsNode = "drive-efi-vars";

    private static readonly Model.Schema.AttrPath FirmwarePath = Attr("firmware");

    private static void Firmware(Context c)
    {
        var firmware = c.Vm.Firmware!;
        if (firmware.Type != "uefi")
            return;
        var code = EfiCode(firmware, c.Facts, out var codeError);
        if (codeError is not null)
            c.Error(codeError.Value.Path, codeError.Value.Detail);
        var vars = c.Paths.EfiVars;
        if (vars is null)
            c.Error(FirmwarePath, "internal: the agent resolved no EFI variable store for this UEFI VM.");
        if (code is null || vars is null)
            return;

        if (firmware.SecureBoot == true)
            c.Arg("-global", "driver=cfi.pflash01,property=secure,value=on");
        ImageNodes(c, "efi-code", c.File(code, FirmwarePath, "OVMF code"), "raw", new NodeOptions(ReadOnly: true));
        ImageNodes(c, "efi-vars", c.File(vars, FirmwarePath, "EFI variable store"), "raw", new NodeOptions());
    }

    private static string? EfiCode(FirmwareSpec firmware, HostFacts facts, out (Model.Schema.AttrPath Path, string Detail)? error)
    {
        error = null;
        var template = firmware.EfiVars?.Template ?? "4m";
        if (firmware.SecureBoot == true)
        {
            if (template != "4m")
                error = (FirmwarePath.Attr("efi_vars").Attr("template"), "secure boot needs the \"4m\" OVMF build.");
            else if (facts.Ovmf.Code4MSecure is null)
                error = (FirmwarePath.Attr("secure_boot"), "this host has no secure-boot OVMF build (OVMF_CODE_4M.secboot.fd); install the ovmf package.");
            return error is null ? facts.Ovmf.Code4MSecure : null;
        }
        var code = template == "2m" ? facts.Ovmf.Code2M : facts.Ovmf.Code4M;
        if (code is null)
            error = (FirmwarePath.Attr("type"), $"this host has no {template} OVMF build (UEFI firmware); install the ovmf package or use firmware type \"bios\".");
        return code;
    }

    /// <summary>
    /// The OVMF variable-store template the agent copies to <see cref="VmPaths.EfiVars"/> when it creates
    /// a UEFI VM's store; null for BIOS VMs. Pre-enrolled keys (default: when secure boot is on) pick the
    /// template with the distribution's and Microsoft's keys.
    /// </summary>
    public static string? EfiVarsTemplate(VmSpec spec, HostFacts facts)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(facts);
        var firmware = Defaults.Apply(spec).Firmware!;
        if (firmware.Type != "uefi")
            return null;
        var template = firmware.EfiVars?.Template ?? "4m";
        var enrolled = firmware.EfiVars?.PreEnrolledKeys ?? firmware.SecureBoot == true;
        var at = FirmwarePath.Attr("efi_vars");
        var (file, missing) = (template, enrolled) switch
        {
            ("4m", true) => (facts.Ovmf.Vars4MEnrolled, "OVMF_VARS_4M.ms.fd"),
            ("4m", false) => (facts.Ovmf.Vars4M, "OVMF_VARS_4M.fd"),
            ("2m", false) => (facts.Ovmf.Vars2M, "OVMF_VARS.fd"),
            _ => (null, null),
        };
        if (missing is null)
            throw new QemuBuildException([new(at.Attr("pre_enrolled_keys").ToString(), "pre-enrolled keys need the \"4m\" template.")]);
        return file ?? throw new QemuBuildException([new(at.Attr("template").ToString(), $"this host has no {template} EFI variable template ({missing}); install the ovmf package.")]);
    }
}
