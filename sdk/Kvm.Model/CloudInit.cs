using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>
/// The cloud-init seed of a VM: a small ISO (NoCloud or ConfigDrive2) the agent makes on the host from these
/// settings and attaches as a read-only CD-ROM. Every content change regenerates the seed and swaps the medium
/// of a running VM live; it never replaces the VM.
/// </summary>
public sealed class CloudInitSpec : IValidatable
{
    /// <summary>Host name pattern: RFC 1123 labels.</summary>
    public const string HostnamePattern = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*";

    /// <summary>Datasource.</summary>
    [Setting("Seed format: `nocloud` (an ISO labelled `cidata` with user-data, meta-data, network-config and vendor-data) or `configdrive2` " +
        "(labelled `config-2`, OpenStack layout under `openstack/latest/`). A change swaps the seed live.",
        Default = "nocloud", OneOf = ["nocloud", "configdrive2"], Update = UpdateKind.Live)]
    public string? Datasource { get; set; }

    /// <summary>Drive slot.</summary>
    [Setting("CD-ROM slot of the seed. It must not be used by a disk or CD-ROM.",
        DefaultText = "`scsi30` (`scsi29` when taken) with a virtio-scsi controller, which every cloud kernel can read; otherwise `ide2` on q35 (`sata5` when taken) and `ide3` on pc (`ide1` when taken)",
        Pattern = Patterns.CdromSlot, PatternText = Patterns.CdromSlotText)]
    public string? Slot { get; set; }

    /// <summary>Host name.</summary>
    [Setting("Host name of the guest (meta-data `local-hostname`).", DefaultText = "the VM's `name`",
        Pattern = HostnamePattern, PatternText = "a host name (letters, digits and '-' in dot-separated labels)", MaxLength = 253, Update = UpdateKind.Live)]
    public string? Hostname { get; set; }

    /// <summary>User.</summary>
    [Setting("A user cloud-init creates, with its SSH keys and password (passwordless sudo).", Update = UpdateKind.Live, NullMeansAbsent = true)]
    public CloudInitUserSpec? User { get; set; }

    /// <summary>Per-NIC addresses.</summary>
    [Setting("Addresses by network interface slot (`net0`, …): each NIC is matched by its MAC in the generated network configuration.",
        KeyPattern = Patterns.NicSlot, KeyPatternText = Patterns.NicSlotText, Update = UpdateKind.Live)]
    public Dictionary<string, CloudInitIpConfigSpec>? IpConfig { get; set; }

    /// <summary>DNS.</summary>
    [Setting("Name servers and search domains written into the generated network configuration.", Update = UpdateKind.Live, NullMeansAbsent = true)]
    public CloudInitDnsSpec? Dns { get; set; }

    /// <summary>User data.</summary>
    [Setting("Your own user-data (`#cloud-config`, a `#!` script, …). With `user` or `hostname` set too, both are sent as one multipart user-data, " +
        "yours last, so it wins on conflicts. Never returned in clear: the agent answers a `sha256:` fingerprint.",
        Sensitive = true, MaxLength = 262_144, Update = UpdateKind.Live)]
    public string? UserData { get; set; }

    /// <summary>Meta data.</summary>
    [Setting("Your own meta-data, replacing the generated one (instance-id and host name included; for `configdrive2` it is `meta_data.json`).",
        MaxLength = 65_536, Update = UpdateKind.Live)]
    public string? MetaData { get; set; }

    /// <summary>Network config.</summary>
    [Setting("Your own network configuration, replacing the one generated from `ip_config` and `dns`: network-config v1 or v2 YAML for `nocloud`, " +
        "OpenStack `network_data.json` for `configdrive2`.", MaxLength = 65_536, Update = UpdateKind.Live)]
    public string? NetworkConfig { get; set; }

    /// <summary>Vendor data.</summary>
    [Setting("Vendor-data: cloud-config the guest applies before user-data (user-data wins on conflicts).", MaxLength = 262_144, Update = UpdateKind.Live)]
    public string? VendorData { get; set; }

    /// <summary>What a change does to a running guest.</summary>
    [Setting("What a change of the seed does to a running VM, after the new seed is swapped in: `none` (the guest sees it at its next boot), " +
        "`reboot` (the guest is reset now), `reprovision` (a new instance-id, so cloud-init runs again as on a first boot, and a reset now).",
        Default = "none", OneOf = ["none", "reboot", "reprovision"], Update = UpdateKind.Live)]
    public string? OnChange { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (MetaData is not null && Hostname is not null)
            context.Add(path.Attr("hostname"), "is written into the generated meta-data; with `meta_data` set, put `local-hostname` there instead.");
        if (MetaData is not null && OnChange == "reprovision")
            context.Add(path.Attr("on_change"), "\"reprovision\" rotates the instance-id of the generated meta-data; with `meta_data` set, change its instance-id yourself.");
        if (NetworkConfig is not null && (IpConfig is { Count: > 0 } || Dns is not null))
            context.Add(path.Attr("network_config"), "replaces the network configuration generated from `ip_config` and `dns`: set one or the other.");
        if (Datasource == "configdrive2")
        {
            foreach (var (name, text) in new[] { ("network_config", NetworkConfig), ("meta_data", MetaData) })
            {
                if (text is null)
                    continue;
                try { using var _ = JsonDocument.Parse(text); }
                catch (JsonException) { context.Add(path.Attr(name), "must be JSON for datasource \"configdrive2\" (OpenStack layout)."); }
            }
        }
    }

    /// <summary>
    /// The slot the seed uses: the user's, or the first free one of the machine's defaults; null when every default
    /// is taken (validation reports it).
    /// </summary>
    public static string? EffectiveSlot(VmSpec vm)
    {
        if (vm.CloudInit is null)
            return null;
        if (vm.CloudInit.Slot is { } slot)
            return slot;
        // On virtio-scsi the seed is a SCSI CD-ROM: virtio_scsi and sr_mod are in every cloud kernel, while some (Debian's
        // cloud kernel) carry no AHCI driver, so a seed on q35's IDE/SATA ports would go unseen and cloud-init would not run.
        var q35 = (vm.Machine ?? "q35").Contains("q35", StringComparison.Ordinal);
        var virtioScsi = (vm.ScsiController ?? "virtio-scsi-single").StartsWith("virtio-scsi", StringComparison.Ordinal);
        string[] candidates = virtioScsi ? ["scsi30", "scsi29"] : q35 ? ["ide2", "sata5"] : ["ide3", "ide1"];
        return candidates.FirstOrDefault(s => vm.Disks?.ContainsKey(s) != true && vm.Cdroms?.ContainsKey(s) != true);
    }

    /// <summary>Rules that need the rest of the VM: slot clashes, ip_config slots that have no NIC.</summary>
    public static void ValidateIn(VmSpec vm, ValidationContext context, AttrPath path)
    {
        if (vm.CloudInit is not { } ci)
            return;
        var at = path.Attr("cloud_init");
        var q35 = (vm.Machine ?? "q35").Contains("q35", StringComparison.Ordinal);
        var slot = EffectiveSlot(vm);
        if (slot is null)
            context.Add(at.Attr("slot"), "every default seed slot is used by a disk or CD-ROM: choose a free CD-ROM slot.");
        else if (ci.Slot is not null && (vm.Disks?.ContainsKey(slot) == true || vm.Cdroms?.ContainsKey(slot) == true))
            context.Add(at.Attr("slot"), $"slot \"{slot}\" is already used by a {(vm.Disks?.ContainsKey(slot) == true ? "disk" : "CD-ROM")}.");
        else if (ci.Slot is not null && q35 && slot is "ide1" or "ide3")
            context.Add(at.Attr("slot"), "q35 has one IDE unit per bus: use ide0 or ide2 (or a sata or scsi slot).");
        else if (ci.Slot is not null && !q35 && slot.StartsWith("sata", StringComparison.Ordinal))
            context.Add(at.Attr("slot"), "SATA slots need the q35 machine type.");
        foreach (var nic in (ci.IpConfig ?? []).Keys)
            if (vm.NetworkInterfaces?.ContainsKey(nic) != true)
                context.Add(at.Attr("ip_config").Key(nic), $"this VM has no network interface \"{nic}\".");
        if (ci.Hostname is null && ci.MetaData is null && vm.Name is { } name && !Validator.Matches(HostnamePattern, name))
            context.Add(at.Attr("hostname"), $"the VM name \"{Validator.Printable(name)}\" is not a host name; set `hostname`.");
    }
}

/// <summary>The user cloud-init creates.</summary>
public sealed class CloudInitUserSpec
{
    /// <summary>Login name.</summary>
    [Setting("Login name.", Required = true, Pattern = "[a-z_][a-z0-9_-]{0,31}", PatternText = "a Linux user name (lower-case letters, digits, '_' and '-', at most 32)", Update = UpdateKind.Live)]
    public string? Name { get; set; }

    /// <summary>SSH keys.</summary>
    [Setting("SSH public keys authorized for the user.", Pattern = "(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( [^\\u0000-\\u001f]*)?",
        PatternText = "one OpenSSH public key line (`ssh-ed25519 AAAA… comment`)", Update = UpdateKind.Live)]
    public List<string>? SshKeys { get; set; }

    /// <summary>Password.</summary>
    [Setting("Password of the user: clear text (the seed carries a SHA-512 crypt hash of it) or an existing crypt hash (`$6$…`, `$y$…`). " +
        "Unset: password login stays locked. Never returned in clear: the agent answers a `sha256:` fingerprint.",
        Sensitive = true, MaxLength = 1024, Update = UpdateKind.Live)]
    public string? Password { get; set; }
}

/// <summary>Addresses of one NIC.</summary>
public sealed class CloudInitIpConfigSpec
{
    /// <summary>IPv4.</summary>
    [Setting("IPv4 configuration.", Update = UpdateKind.Live, NullMeansAbsent = true)]
    public CloudInitIpv4Spec? Ipv4 { get; set; }

    /// <summary>IPv6.</summary>
    [Setting("IPv6 configuration.", Update = UpdateKind.Live, NullMeansAbsent = true)]
    public CloudInitIpv6Spec? Ipv6 { get; set; }
}

/// <summary>IPv4 of one NIC.</summary>
public sealed class CloudInitIpv4Spec : IValidatable
{
    /// <summary>Address.</summary>
    [Setting("`dhcp`, or a static address in CIDR notation (`192.168.50.10/24`).", Required = true, Update = UpdateKind.Live)]
    public string? Address { get; set; }

    /// <summary>Gateway.</summary>
    [Setting("Default gateway (static addresses only).", Update = UpdateKind.Live)]
    public string? Gateway { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path) => IpRules.Check(context, path, Address, Gateway, AddressFamily.InterNetwork, ["dhcp"]);
}

/// <summary>IPv6 of one NIC.</summary>
public sealed class CloudInitIpv6Spec : IValidatable
{
    /// <summary>Address.</summary>
    [Setting("`dhcp` (DHCPv6), `auto` (SLAAC), or a static address in CIDR notation (`fd00::10/64`).", Required = true, Update = UpdateKind.Live)]
    public string? Address { get; set; }

    /// <summary>Gateway.</summary>
    [Setting("Default gateway (static addresses only).", Update = UpdateKind.Live)]
    public string? Gateway { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path) => IpRules.Check(context, path, Address, Gateway, AddressFamily.InterNetworkV6, ["dhcp", "auto"]);
}

/// <summary>DNS settings of the generated network configuration.</summary>
public sealed class CloudInitDnsSpec : IValidatable
{
    /// <summary>Domain.</summary>
    [Setting("DNS domain; it becomes the first search domain.", Pattern = CloudInitSpec.HostnamePattern, PatternText = "a domain name", Update = UpdateKind.Live)]
    public string? Domain { get; set; }

    /// <summary>Servers.</summary>
    [Setting("Name server addresses (IPv4 or IPv6).", Update = UpdateKind.Live)]
    public List<string>? Servers { get; set; }

    /// <summary>Search domains.</summary>
    [Setting("Further search domains.", Pattern = CloudInitSpec.HostnamePattern, PatternText = "a domain name", Update = UpdateKind.Live)]
    public List<string>? Search { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        for (var i = 0; i < (Servers?.Count ?? 0); i++)
            if (!IPAddress.TryParse(Servers![i], out _))
                context.Add(path.Attr("servers").At(i), $"\"{Validator.Printable(Servers[i])}\" is not an IP address.");
    }
}

/// <summary>Address rules shared by the IPv4 and IPv6 settings.</summary>
internal static class IpRules
{
    public static void Check(ValidationContext context, AttrPath path, string? address, string? gateway, AddressFamily family, string[] keywords)
    {
        var v = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        var isKeyword = address is not null && keywords.Contains(address, StringComparer.Ordinal);
        if (address is not null && !isKeyword && !TryParseCidr(address, family, out _, out _))
            context.Add(path.Attr("address"), $"\"{Validator.Printable(address)}\" is not {string.Join(", ", keywords.Select(k => $"\"{k}\""))} or an {v} address in CIDR notation.");
        if (gateway is null)
            return;
        if (isKeyword)
            context.Add(path.Attr("gateway"), $"applies to static addresses only; \"{address}\" gets its gateway from the network.");
        else if (!IPAddress.TryParse(gateway, out var gw) || gw.AddressFamily != family)
            context.Add(path.Attr("gateway"), $"\"{Validator.Printable(gateway)}\" is not an {v} address.");
    }

    /// <summary>Parses <c>address/prefix</c> keeping host bits (an interface address).</summary>
    public static bool TryParseCidr(string text, AddressFamily family, out IPAddress address, out int prefix)
    {
        address = IPAddress.None;
        prefix = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(text[..slash], out var ip) || ip.AddressFamily != family
            || !int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p))
            return false;
        if (p > (family == AddressFamily.InterNetwork ? 32 : 128))
            return false;
        address = ip;
        prefix = p;
        return true;
    }
}
