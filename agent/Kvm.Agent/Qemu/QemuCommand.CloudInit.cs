namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>
    /// The cloud-init seed: a read-only CD-ROM with the ISO the agent made. Its device id is the slot, like every
    /// drive, so a changed seed is swapped live with QMP <c>blockdev-change-medium</c> by that id.
    /// </summary>
    private static void CloudInitDrive(Context c, string slot)
    {
        var at = Attr("cloud_init");
        if (c.Paths.CloudInitSeed is not { } iso)
        {
            c.Error(at, "internal: the agent made no cloud-init seed for this VM.");
            return;
        }
        ImageNodes(c, slot, c.File(iso, at, "cloud-init seed"), "raw", new NodeOptions(ReadOnly: true));
        var device = Placement(c, slot, "cd", iothread: false).Add("drive", DriveNode(slot)).Add("id", slot);
        c.Arg("-device", device.ToString());
    }
}
