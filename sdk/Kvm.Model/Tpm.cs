using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>A virtual TPM (swtpm), like Proxmox's <c>tpmstate0</c>.</summary>
public sealed class TpmSpec
{
    /// <summary>TPM version.</summary>
    [Setting("TPM version: `v2.0` (a CRB device; what Windows 11 needs) or `v1.2` (a TIS device). Changing it gives the VM a new, empty TPM, " +
        "so it also needs a changed `state_generation`.", Default = "v2.0", OneOf = ["v2.0", "v1.2"])]
    public string? Version { get; set; }

    /// <summary>Explicit reset of the TPM state.</summary>
    [Setting("Change this number (e.g. increase it) to wipe the TPM's state at the VM's next start: the VM gets a freshly manufactured TPM " +
        "(new endorsement key; keys sealed to the old TPM, such as BitLocker's, are lost). The state is never reset any other way while the `tpm` block stays.",
        Default = 0, Min = 0, Max = 1_000_000)]
    public long? StateGeneration { get; set; }

    /// <summary>Rules comparing an update with the current spec.</summary>
    public static void ValidateUpdate(VmSpec before, VmSpec after, ValidationContext context)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        ArgumentNullException.ThrowIfNull(context);
        if (before.Tpm is not { } old || after.Tpm is not { } now)
            return;
        if ((old.Version ?? "v2.0") != (now.Version ?? "v2.0") && (old.StateGeneration ?? 0) == (now.StateGeneration ?? 0))
            context.Add(AttrPath.Root.Attr("tpm").Attr("version"),
                $"changing the TPM version from {old.Version ?? "v2.0"} to {now.Version ?? "v2.0"} replaces the TPM and its state; change `tpm.state_generation` too to confirm the reset.");
    }
}
