namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>The control socket of the VM's swtpm (QEMU connects to it; swtpm listens).</summary>
    public static string TpmSocket(string runDir)
    {
        ArgumentNullException.ThrowIfNull(runDir);
        return runDir.TrimEnd('/') + "/swtpm.sock";
    }

    /// <summary>
    /// A virtual TPM: QEMU's TPM emulator backend talks to the VM's own swtpm over its control socket. TPM 2.0 is
    /// a CRB device (what current guests expect); TPM 1.2 only exists as the TIS interface.
    /// </summary>
    private static void Tpm(Context c)
    {
        if (c.Vm.Tpm is not { } tpm)
            return;
        if (c.Paths.TpmSocket is not { } path)
        {
            c.Error(Attr("tpm"), "internal: the agent resolved no swtpm socket for this VM.");
            return;
        }
        var socket = c.File(path, Attr("tpm"), "swtpm socket");
        CheckSocketPath(c, socket, "swtpm socket");
        c.Arg("-chardev", QemuOptions.Of("socket").Add("id", "chrtpm").Add("path", socket).ToString());
        c.Arg("-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
        c.Arg("-device", (tpm.Version == "v1.2" ? "tpm-tis" : "tpm-crb") + ",tpmdev=tpm0");
    }
}
