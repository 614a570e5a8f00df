namespace Kvm.Agent.Images;

/// <summary>Which VM disks are linked clones of which images: implemented by the VM store, read by the image feature.</summary>
public interface IImageUsage
{
    /// <summary>Every (vm_id, slot, image_id) where a VM's disk is a qcow2 overlay on an image.</summary>
    IReadOnlyList<(long VmId, string Slot, string ImageId)> LinkedClones();
}
