using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>Templates and clones, like Proxmox's <c>qm template</c> and <c>qm clone</c>.</summary>
public partial class VmSpec
{
    /// <summary>Template.</summary>
    [Setting("Make the VM a template, like Proxmox's `qm template`: a read-only base that is never started and whose disks other VMs clone " +
        "(`clone`). Turning it on converts the VM in place (it must be stopped); as in Proxmox there is no way back: turning it off is refused — " +
        "make a full clone instead. A template's `power_state` is `stopped`, and its disks cannot change.",
        Default = false, Update = UpdateKind.Live)]
    public bool? Template { get; set; }

    /// <summary>Clone source.</summary>
    [Setting("Create the VM's disks from another VM's disks, like Proxmox's `qm clone`. Only disk content comes from the source: every inline disk slot " +
        "of this VM that the source also has starts as a copy of it (other slots start empty); all other settings come from this configuration. Create-only.",
        NullMeansAbsent = true, Update = UpdateKind.Replace)]
    public CloneSpec? Clone { get; set; }

    /// <summary>Rules of templates and clones, called from <see cref="Validate"/>.</summary>
    internal void ValidateTemplate(ValidationContext context, AttrPath path)
    {
        if (Template == true && PowerState is "running" or "paused")
            context.Add(path.Attr("power_state"), "a template is never started: leave power_state unset or \"stopped\".");
        if (Template == true && Clone is { Linked: true })
            context.Add(path.Attr("clone").Attr("linked"), "a template cannot be a linked clone (its disks would depend on another template); make a full clone.");
        if (Clone is { } clone && VmId is { } self && clone.SourceVmId == self)
            context.Add(path.Attr("clone").Attr("source_vm_id"), "a VM cannot be cloned from itself.");
    }

    /// <summary>Update rules of templates: there is no way back, and a template's disks are fixed.</summary>
    internal void ValidateTemplateUpdate(VmSpec before, ValidationContext context)
    {
        if (before.Template == true && Template != true)
            context.Add(AttrPath.Root.Attr("template"), "a template cannot be converted back to a VM (as in Proxmox); make a full clone of it instead.");
        if (before.Template == true && Template == true
            && !ModelJsonEquals(before.Disks, Disks))
            context.Add(AttrPath.Root.Attr("disks"), "a template's disks are read-only bases for its clones and cannot change.");
    }

    private static bool ModelJsonEquals(Dictionary<string, DiskSpec>? a, Dictionary<string, DiskSpec>? b) =>
        System.Text.Json.JsonSerializer.Serialize(a ?? [], ModelJsonContext.Default.DictionaryStringDiskSpec)
        == System.Text.Json.JsonSerializer.Serialize(b ?? [], ModelJsonContext.Default.DictionaryStringDiskSpec);
}

/// <summary>Where a clone's disks come from.</summary>
public sealed class CloneSpec
{
    /// <summary>Source VM.</summary>
    [Setting("VM ID of the source VM on the same host: a template (`template = true`), or a stopped VM for a full clone.",
        Required = true, Min = 100, Max = 999_999_999, Update = UpdateKind.Replace)]
    public long? SourceVmId { get; set; }

    /// <summary>Linked or full.</summary>
    [Setting("`true`: linked clone — each disk is a thin qcow2 overlay on the template's disk (fast; the template cannot be deleted while " +
        "linked clones exist; needs a template source and qcow2 disks). `false`: full clone — an independent copy.",
        DefaultText = "`true` when the source is a template, `false` otherwise (as in Proxmox)", Update = UpdateKind.Replace)]
    public bool? Linked { get; set; }
}
