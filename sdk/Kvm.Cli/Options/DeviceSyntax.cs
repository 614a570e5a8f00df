using System.Globalization;
using System.Text.RegularExpressions;
using Kvm.Model;

namespace Kvm.Cli.Options;

/// <summary>
/// The qm property-string style (<c>scsi0=16G,cache=writeback</c>, <c>net0=virtio,bridge=br0</c>) parsed into
/// model parts. Syntax errors are thrown as <see cref="FormatException"/> with a message that fits after the option.
/// </summary>
public static partial class DeviceSyntax
{
    /// <summary>Splits <c>SLOT=VALUE</c>; <paramref name="defaultSlot"/> is used when the text has no slot (qm's --cdrom).</summary>
    public static (string Slot, string Value) SplitSlot(string text, string example, string? defaultSlot = null)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        var comma = text.IndexOf(',', StringComparison.Ordinal);
        if (eq > 0 && (comma < 0 || eq < comma) && SlotWord().IsMatch(text[..eq]))
            return (text[..eq], text[(eq + 1)..]);
        if (defaultSlot is not null)
            return (defaultSlot, text);
        throw new FormatException($"expected SLOT=VALUE, for example {example}.");
    }

    /// <summary>The comma-separated items of a property string: a leading bare value, then key=value pairs.</summary>
    public static (string? Positional, List<(string Key, string Value)> Pairs) Items(string text)
    {
        string? positional = null;
        var pairs = new List<(string, string)>();
        var parts = text.Split(',');
        for (var i = 0; i < parts.Length; i++)
        {
            var part = parts[i].Trim();
            if (part.Length == 0)
                throw new FormatException("has an empty item (two commas in a row, or a trailing comma).");
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                if (i > 0)
                    throw new FormatException($"item \"{part}\" needs KEY=VALUE form (only the first item may be a bare value).");
                positional = part;
                continue;
            }
            pairs.Add((part[..eq].Trim().ToLowerInvariant(), part[(eq + 1)..].Trim()));
        }
        return (positional, pairs);
    }

    /// <summary>A disk: <c>16G</c>, <c>POOL:16</c>, <c>volume:POOL/NAME</c> or <c>POOL/NAME</c>, then options.</summary>
    public static DiskSpec Disk(string text)
    {
        var (positional, pairs) = Items(text);
        var disk = new DiskSpec();
        if (positional is not null)
            DiskSource(disk, positional);
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "size": disk.SizeGib = SizeGib(value); break;
                case "file" or "volume": DiskSource(disk, key == "volume" ? "volume:" + value : value); break;
                case "format": disk.Format = value; break;
                case "pool" or "storage": disk.Pool = value; break;
                case "cache": disk.Cache = value; break;
                case "aio": disk.Aio = value; break;
                case "discard": disk.Discard = value == "ignore" ? false : Bool(key, value); break;
                case "ssd": disk.Ssd = Bool(key, value); break;
                case "iothread": disk.Iothread = Bool(key, value); break;
                case "serial": disk.Serial = value; break;
                case "ro" or "readonly" or "read_only": disk.ReadOnly = Bool(key, value); break;
                case "preallocation": disk.Preallocation = value; break;
                case "media" when value == "disk": break;
                case "media": throw new FormatException("is a CD-ROM (media=cdrom): use --cdrom SLOT=POOL/ISO.");
                default:
                    throw new FormatException($"unknown disk option \"{key}\"; known: size, volume, pool, format, cache, aio, discard, ssd, iothread, serial, ro, preallocation.");
            }
        }
        if (positional is null && disk.SizeGib is null && disk.VolumeId is null && pairs.Count == 0)
            throw new FormatException("needs a size (16G) or a volume (volume:default/data.qcow2).");
        return disk;
    }

    private static void DiskSource(DiskSpec disk, string value)
    {
        if (value.StartsWith("volume:", StringComparison.Ordinal))
            disk.VolumeId = value["volume:".Length..];
        else if (value.Contains('/', StringComparison.Ordinal))
            disk.VolumeId = value;
        else if (value.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
        {
            // Proxmox's STORAGE:SIZE allocates a new disk of SIZE GiB in that storage.
            disk.Pool = value[..colon];
            disk.SizeGib = SizeGib(value[(colon + 1)..]);
        }
        else
            disk.SizeGib = SizeGib(value);
    }

    /// <summary>A size in whole GiB: <c>16</c>, <c>16G</c>, <c>16GiB</c>, <c>1T</c>, <c>2048M</c>.</summary>
    public static long SizeGib(string text)
    {
        var match = Size().Match(text);
        if (!match.Success || !long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            throw new FormatException($"size \"{text}\" is not a size like 16G, 1T or 2048M.");
        var unit = match.Groups[2].Value.ToUpperInvariant();
        return unit switch
        {
            "" or "G" => n,
            "T" => checked(n * 1024),
            "M" when n % 1024 == 0 => n / 1024,
            "M" or "K" => throw new FormatException($"size \"{text}\" is not a whole number of GiB; disks are sized in GiB."),
            _ => throw new FormatException($"size \"{text}\" has an unknown unit."),
        };
    }

    /// <summary>A NIC: <c>virtio</c>, <c>virtio=MAC</c> (qm), then bridge, mac, queues, mtu, link_down.</summary>
    public static NicSpec Nic(string text)
    {
        var (positional, pairs) = Items(text);
        var nic = new NicSpec();
        if (positional is not null)
            nic.Model = positional;
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "virtio" or "e1000" or "e1000e" or "rtl8139" or "vmxnet3":
                    nic.Model = key;
                    nic.Mac = value;
                    break;
                case "model": nic.Model = value; break;
                case "bridge": nic.Bridge = value; break;
                case "mac" or "macaddr": nic.Mac = value; break;
                case "queues": nic.Queues = Int(key, value); break;
                case "mtu": nic.Mtu = Int(key, value); break;
                case "link_down": nic.LinkUp = !Bool(key, value); break;
                case "link_up" or "link": nic.LinkUp = value is "up" || (value is not "down" && Bool(key, value)); break;
                case "firewall" or "tag" or "rate" or "trunks":
                    throw new FormatException($"\"{key}\" is not supported by kvm network interfaces (yet).");
                default:
                    throw new FormatException($"unknown network option \"{key}\"; known: model, bridge, mac, queues, mtu, link_down.");
            }
        }
        return nic;
    }

    /// <summary>A CD-ROM: <c>POOL/ISO</c>, <c>volume:POOL/ISO</c>, or <c>none</c>/<c>cdrom</c> for an empty drive.</summary>
    public static CdromSpec Cdrom(string text)
    {
        var (positional, pairs) = Items(text);
        var cdrom = new CdromSpec();
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "media" when value == "cdrom": break;
                case "file" or "volume": positional = value; break;
                default: throw new FormatException($"unknown CD-ROM option \"{key}\"; give POOL/ISO or none.");
            }
        }
        cdrom.VolumeId = positional switch
        {
            null or "none" or "cdrom" or "" => null,
            var v when v.StartsWith("volume:", StringComparison.Ordinal) => v["volume:".Length..],
            var v => v,
        };
        return cdrom;
    }

    /// <summary>qm's boolean spellings.</summary>
    public static bool Bool(string key, string value) => value.ToLowerInvariant() switch
    {
        "1" or "on" or "true" or "yes" => true,
        "0" or "off" or "false" or "no" => false,
        _ => throw new FormatException($"{key}=\"{value}\" is not a boolean (1/0, on/off, true/false)."),
    };

    private static int Int(string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException($"{key}=\"{value}\" is not a whole number.");

    [GeneratedRegex("^[a-z]+[0-9]+$")]
    private static partial Regex SlotWord();

    [GeneratedRegex("^([0-9]+)\\s*(?:([KMGTkmgt])(?:i?[Bb])?)?$")]
    private static partial Regex Size();
}
