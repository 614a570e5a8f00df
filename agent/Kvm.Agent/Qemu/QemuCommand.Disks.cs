using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>How QEMU's classic cache modes map onto block-node and device options.</summary>
    internal sealed record CacheMode(bool Direct, bool NoFlush, bool WriteCache);

    internal static readonly IReadOnlyDictionary<string, CacheMode> CacheModes = new Dictionary<string, CacheMode>(StringComparer.Ordinal)
    {
        ["none"] = new(Direct: true, NoFlush: false, WriteCache: true),
        ["writeback"] = new(Direct: false, NoFlush: false, WriteCache: true),
        ["writethrough"] = new(Direct: false, NoFlush: false, WriteCache: false),
        ["directsync"] = new(Direct: true, NoFlush: false, WriteCache: false),
        ["unsafe"] = new(Direct: false, NoFlush: true, WriteCache: true),
    };

    internal sealed record NodeOptions(bool ReadOnly = false, CacheMode? Cache = null, string? Aio = null, bool Discard = false);

    /// <summary>SCSI controller models: the QEMU device and how many targets one controller addresses.</summary>
    private static readonly IReadOnlyDictionary<string, (string Device, int Targets)> ScsiControllers = new Dictionary<string, (string, int)>(StringComparer.Ordinal)
    {
        ["lsi"] = ("lsi53c895a", 7),
        ["lsi53c810"] = ("lsi53c810", 7),
        ["megasas"] = ("megasas", 31),
        ["pvscsi"] = ("pvscsi", 31),
        ["virtio-scsi-pci"] = ("virtio-scsi-pci", 31),
        ["virtio-scsi-single"] = ("virtio-scsi-pci", 1),
    };

    private static readonly string[] ImageFormats = ["raw", "qcow2", "vmdk"];

    /// <summary>Block node (format layer) of a disk or CD-ROM slot: what QMP block_resize and query-block name.</summary>
    public static string DriveNode(string slot) => "drive-" + slot;

    /// <summary>
    /// A protocol node (the file) under a format node named <c>drive-&lt;name&gt;</c>. Options are set on
    /// both: a node given by reference inherits nothing from its parent. A host block device is a <c>host_device</c>
    /// protocol node (same cache, aio and discard options) under a raw format node.
    /// </summary>
    private static void ImageNodes(Context c, string name, string path, string format, NodeOptions options, bool hostDevice = false)
    {
        var file = "file-" + name;
        var protocol = QemuOptions.Of(hostDevice ? "driver=host_device" : "driver=file").Add("filename", path).Add("node-name", file);
        var image = QemuOptions.Of("driver=" + format).Add("file", file).Add("node-name", DriveNode(name));
        foreach (var node in new[] { protocol, image })
        {
            if (options.Cache is { } cache)
                node.Add("cache.direct", cache.Direct).Add("cache.no-flush", cache.NoFlush);
            if (options.Discard)
                node.Add("discard", "unmap");
            if (options.ReadOnly)
                node.Add("read-only", true);
        }
        if (options.Aio is { } aio)
            protocol.Add("aio", aio);
        // Zeroes written by the guest become holes, as Proxmox does whenever discard is on.
        if (options.Discard)
            image.Add("detect-zeroes", "unmap");
        c.Arg("-blockdev", protocol.ToString());
        c.Arg("-blockdev", image.ToString());
    }

    private static void Storage(Context c)
    {
        var disks = c.Vm.Disks ?? [];
        var cdroms = c.Vm.Cdroms ?? [];
        var seedSlot = CloudInitSpec.EffectiveSlot(c.Vm);
        var slots = disks.Keys.Concat(cdroms.Keys).Concat(seedSlot is null ? [] : [seedSlot]).Order(SlotComparer).ToList();
        var scsi = c.Vm.ScsiController!;
        var (controllerDevice, targets) = ScsiControllers[scsi];

        // Proxmox's layout: q35's built-in AHCI serves the IDE slots (one unit per port), a second AHCI
        // controller the SATA slots, so ide0 and sata0 can coexist.
        if (slots.Any(s => ParseSlot(s).Bus == "sata"))
            c.Arg("-device", "ich9-ahci,id=ahci0");
        if (scsi != "virtio-scsi-single")
        {
            foreach (var controller in slots.Where(s => ParseSlot(s).Bus == "scsi").Select(s => ParseSlot(s).Index / targets).Distinct())
                c.Arg("-device", $"{controllerDevice},id=scsihw{controller}");
        }

        foreach (var slot in slots)
        {
            if (slot == seedSlot)
                CloudInitDrive(c, slot);
            else if (disks.TryGetValue(slot, out var disk))
                Disk(c, slot, disk);
            else
                Cdrom(c, slot, cdroms[slot]);
        }
    }

    /// <summary>The <c>-device</c> option that places a disk or CD-ROM on its bus; adds its controller when it has its own.</summary>
    private static QemuOptions.Builder Placement(Context c, string slot, string kind, bool iothread)
    {
        var (bus, index) = ParseSlot(slot);
        switch (bus)
        {
            case "ide":
                return QemuOptions.Of($"ide-{kind}").Add("bus", $"ide.{index / 2}").Add("unit", index % 2);
            case "sata":
                return QemuOptions.Of($"ide-{kind}").Add("bus", $"ahci0.{index}");
            case "scsi":
                var scsi = c.Vm.ScsiController!;
                var (device, targets) = ScsiControllers[scsi];
                var options = QemuOptions.Of($"scsi-{kind}");
                if (scsi == "virtio-scsi-single")
                {
                    if (iothread)
                        c.Arg("-object", $"iothread,id=iothread-{slot}");
                    c.Arg("-device", QemuOptions.Of(device).Add("id", $"virtioscsi{index}").AddIf(iothread, "iothread", $"iothread-{slot}").ToString());
                    return options.Add("bus", $"virtioscsi{index}.0").Add("channel", 0).Add("scsi-id", 0).Add("lun", 0);
                }
                // virtio-scsi has one target with many LUNs; the HBAs address disks by target ID.
                return scsi == "virtio-scsi-pci"
                    ? options.Add("bus", "scsihw0.0").Add("channel", 0).Add("scsi-id", 0).Add("lun", index)
                    : options.Add("bus", $"scsihw{index / targets}.0").Add("channel", 0).Add("scsi-id", index % targets).Add("lun", 0);
            default: // virtio
                if (iothread)
                    c.Arg("-object", $"iothread,id=iothread-{slot}");
                return QemuOptions.Of("virtio-blk-pci").AddIf(iothread, "iothread", $"iothread-{slot}");
        }
    }

    private static void Disk(Context c, string slot, DiskSpec disk)
    {
        var at = Attr("disks").Key(slot);
        var bus = ParseSlot(slot).Bus;
        var iothread = disk.Iothread == true;
        if (iothread && !(bus == "virtio" || (bus == "scsi" && c.Vm.ScsiController == "virtio-scsi-single")))
            c.Error(at.Attr("iothread"), "iothreads need a virtio disk, or a scsi disk on the \"virtio-scsi-single\" controller.");
        if (disk.ReadOnly == true && bus is "ide" or "sata")
            c.Error(at.Attr("read_only"), "QEMU's IDE and SATA disks cannot be read-only; use a scsi or virtio slot.");
        if (!c.Paths.Disks.TryGetValue(slot, out var file))
        {
            c.Error(at, "internal: the agent resolved no image file for this disk.");
            return;
        }
        if (!ImageFormats.Contains(file.Format, StringComparer.Ordinal))
            c.Error(at.Attr("format"), $"image format \"{file.Format}\" is not one of: {string.Join(", ", ImageFormats)}.");

        var cache = CacheModes[disk.Cache!];
        ImageNodes(c, slot, c.File(file.Path, file.HostDevice ? at.Attr("host_device") : at, file.HostDevice ? "host device" : "disk image"), file.Format,
            new NodeOptions(ReadOnly: disk.ReadOnly == true, Cache: cache, Aio: disk.Aio, Discard: disk.Discard == true), file.HostDevice);
        var device = Placement(c, slot, "hd", iothread)
            .Add("drive", DriveNode(slot)).Add("id", slot);
        if (disk.Serial is { } serial)
            device.Add("serial", c.Safe(serial, at.Attr("serial")));
        if (disk.Ssd == true)
            device.Add("rotation_rate", 1);
        if (!cache.WriteCache)
            device.Add("write-cache", false);
        AddBootIndex(c, slot, device);
        c.Arg("-device", device.ToString());
    }

    private static void Cdrom(Context c, string slot, CdromSpec cdrom)
    {
        var at = Attr("cdroms").Key(slot);
        var device = Placement(c, slot, "cd", iothread: false);
        if (cdrom.VolumeId is not null)
        {
            if (c.Paths.Cdroms.GetValueOrDefault(slot) is not { } iso)
            {
                c.Error(at, "internal: the agent resolved no ISO file for this CD-ROM.");
                return;
            }
            ImageNodes(c, slot, c.File(iso, at, "ISO"), "raw", new NodeOptions(ReadOnly: true));
            device.Add("drive", DriveNode(slot));
        }
        // An empty drive has no node at all; QMP blockdev-change-medium inserts one later by device id.
        device.Add("id", slot);
        AddBootIndex(c, slot, device);
        c.Arg("-device", device.ToString());
    }

    private static void AddBootIndex(Context c, string slot, QemuOptions.Builder device)
    {
        if (c.BootIndex.TryGetValue(slot, out var index))
            device.Add("bootindex", index);
    }
}
