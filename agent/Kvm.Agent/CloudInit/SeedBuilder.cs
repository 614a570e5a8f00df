using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Model;

namespace Kvm.Agent.CloudInit;

/// <summary>What a seed is made from: the effective cloud-init settings, the VM's name and its NICs' MACs.</summary>
public sealed record SeedInput(CloudInitSpec CloudInit, string VmName, IReadOnlyDictionary<string, string> Macs);

/// <summary>The files of one seed (path inside the ISO → bytes) and the volume label the guest looks for.</summary>
public sealed record SeedContent(string Label, IReadOnlyDictionary<string, byte[]> Files);

/// <summary>
/// Builds the files of a cloud-init seed, purely: the same input gives the same bytes (hashes are salted from the
/// content, never from randomness), so the seed is content-addressed and a regenerated seed only differs when a
/// setting did. User values reach YAML only as JSON strings (a valid YAML flow scalar), never as raw text.
/// </summary>
public static class SeedBuilder
{
    /// <summary>Boundary of the multipart user-data (fixed: the content must be deterministic).</summary>
    public const string Boundary = "==KVM-AGENT-CLOUD-INIT==";

    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = false };
    private static readonly JsonSerializerOptions JsonIndented = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = true };

    /// <summary>
    /// The hash of everything the guest would see except the instance-id: a new value means new content.
    /// Lower-case hex SHA-256.
    /// </summary>
    public static string ContentHash(SeedInput input)
    {
        var content = Build(input, instanceId: "");
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(content.Label + "\n"));
        foreach (var (name, bytes) in content.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{name}\n{bytes.Length}\n"));
            sha.AppendData(bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The instance-id a content hash gives.</summary>
    public static string InstanceIdFor(string contentHash) => "iid-" + contentHash[..16];

    /// <summary>The seed's files for <paramref name="instanceId"/>.</summary>
    public static SeedContent Build(SeedInput input, string instanceId)
    {
        var ci = input.CloudInit;
        var userData = UserData(input);
        var network = ci.NetworkConfig;
        if (ci.Datasource == "configdrive2")
        {
            var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal)
            {
                ["openstack/latest/meta_data.json"] = Utf8(ci.MetaData ?? ConfigDriveMetaData(input, instanceId)),
            };
            if (userData is not null)
                files["openstack/latest/user_data"] = Utf8(userData);
            if ((network ?? NetworkData(input)) is { } data)
                files["openstack/latest/network_data.json"] = Utf8(data);
            if (ci.VendorData is { } vendor)
                files["openstack/latest/vendor_data.json"] = Utf8(JsonSerializer.Serialize(new JsonObject { ["cloud-init"] = vendor }, JsonIndented) + "\n");
            return new SeedContent("config-2", files);
        }
        var nocloud = new SortedDictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["meta-data"] = Utf8(ci.MetaData ?? NoCloudMetaData(input, instanceId)),
            // NoCloud needs a user-data file even when there is nothing to say.
            ["user-data"] = Utf8(userData ?? "#cloud-config\n{}\n"),
        };
        if ((network ?? NetworkConfigV2(input)) is { } config)
            nocloud["network-config"] = Utf8(config);
        if (ci.VendorData is { } vendorData)
            nocloud["vendor-data"] = Utf8(vendorData);
        return new SeedContent("cidata", nocloud);
    }

    /// <summary>NoCloud meta-data.</summary>
    public static string NoCloudMetaData(SeedInput input, string instanceId) =>
        $"instance-id: {Quote(instanceId)}\nlocal-hostname: {Quote(HostnameOf(input))}\n";

    /// <summary>ConfigDrive2 meta_data.json.</summary>
    public static string ConfigDriveMetaData(SeedInput input, string instanceId)
    {
        var meta = new JsonObject
        {
            ["uuid"] = instanceId,
            ["name"] = input.VmName,
            ["hostname"] = HostnameOf(input),
        };
        if (input.CloudInit.User?.SshKeys is { Count: > 0 } keys)
        {
            var publicKeys = new JsonObject();
            for (var i = 0; i < keys.Count; i++)
                publicKeys["key" + i.ToString(CultureInfo.InvariantCulture)] = keys[i];
            meta["public_keys"] = publicKeys;
        }
        return JsonSerializer.Serialize(meta, JsonIndented) + "\n";
    }

    /// <summary>
    /// The user-data: the generated cloud-config (user, host name), the user's own, or both as a multipart
    /// message with the user's part last (cloud-init merges the parts; the merge rule appends lists).
    /// Null when there is neither.
    /// </summary>
    public static string? UserData(SeedInput input)
    {
        var generated = GeneratedCloudConfig(input);
        var own = input.CloudInit.UserData;
        if (generated is null)
            return own;
        if (own is null)
            return generated;
        var sb = new StringBuilder();
        sb.Append("Content-Type: multipart/mixed; boundary=\"").Append(Boundary).Append("\"\nMIME-Version: 1.0\n\n");
        Part(sb, "text/cloud-config", "kvm-generated.cfg", generated);
        Part(sb, ContentTypeOf(own), "user-data", own);
        sb.Append("--").Append(Boundary).Append("--\n");
        return sb.ToString();
    }

    private static void Part(StringBuilder sb, string type, string name, string body)
    {
        sb.Append("--").Append(Boundary).Append('\n');
        sb.Append("Content-Type: ").Append(type).Append("; charset=\"utf-8\"\n");
        sb.Append("MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n");
        sb.Append("Content-Disposition: attachment; filename=\"").Append(name).Append("\"\n\n");
        sb.Append(body);
        if (!body.EndsWith('\n'))
            sb.Append('\n');
    }

    /// <summary>cloud-init's part handlers by the first line, as its own <c>#include</c>/<c>#!</c> detection does.</summary>
    private static string ContentTypeOf(string userData)
    {
        var first = userData.AsSpan(0, Math.Max(0, userData.IndexOf('\n') is var n && n >= 0 ? n : userData.Length)).Trim();
        return first switch
        {
            _ when first.StartsWith("#cloud-config") => "text/cloud-config",
            _ when first.StartsWith("#!") => "text/x-shellscript",
            _ when first.StartsWith("#cloud-boothook") => "text/cloud-boothook",
            _ when first.StartsWith("#include") => "text/x-include-url",
            _ when first.StartsWith("## template: jinja") => "text/jinja2",
            _ => "text/plain",
        };
    }

    /// <summary>The cloud-config made from <c>user</c>; null when it is not set (the host name travels in the meta-data).</summary>
    public static string? GeneratedCloudConfig(SeedInput input)
    {
        var ci = input.CloudInit;
        if (ci.User is not { Name: { } name } user)
            return null;
        var sb = new StringBuilder("#cloud-config\n");
        if (ci.UserData is not null)
            sb.Append("merge_how:\n  - name: list\n    settings: [append]\n  - name: dict\n    settings: [no_replace, recurse_list]\n");
        sb.Append("users:\n");
        sb.Append("  - name: ").Append(Quote(name)).Append('\n');
        sb.Append("    shell: /bin/bash\n");
        sb.Append("    sudo: ").Append(Quote("ALL=(ALL) NOPASSWD:ALL")).Append('\n');
        if (user.Password is { } password)
        {
            sb.Append("    lock_passwd: false\n");
            sb.Append("    passwd: ").Append(Quote(PasswordHash(password))).Append('\n');
        }
        else
        {
            sb.Append("    lock_passwd: true\n");
        }
        if (user.SshKeys is { Count: > 0 } keys)
        {
            sb.Append("    ssh_authorized_keys:\n");
            foreach (var key in keys)
                sb.Append("      - ").Append(Quote(key)).Append('\n');
        }
        if (user.Password is not null)
            sb.Append("ssh_pwauth: true\nchpasswd:\n  expire: false\n");
        return sb.ToString();
    }

    /// <summary>A crypt hash as given, or SHA-512 crypt of the clear text with a salt derived from it (deterministic seed).</summary>
    public static string PasswordHash(string password)
    {
        if (password.Length > 3 && password[0] == '$' && password[1..].Contains('$', StringComparison.Ordinal) && !password.Any(char.IsWhiteSpace))
            return password;
        var salt = CryptSalt(SHA256.HashData(Encoding.UTF8.GetBytes("kvm-cloud-init-salt\0" + password)));
        return Sha512Crypt.Hash(password, salt);
    }

    private static string CryptSalt(byte[] bytes)
    {
        const string alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        var sb = new StringBuilder(16);
        for (var i = 0; i < 16; i++)
            sb.Append(alphabet[bytes[i] % 64]);
        return sb.ToString();
    }

    /// <summary>
    /// network-config v2 from <c>ip_config</c> and <c>dns</c>, each NIC matched by MAC (the guest's interface
    /// names are its own business). Null when neither is set: cloud-init's fallback (DHCP on the first NIC) applies.
    /// </summary>
    public static string? NetworkConfigV2(SeedInput input)
    {
        var ci = input.CloudInit;
        if (ci.IpConfig is not { Count: > 0 } && ci.Dns is null)
            return null;
        var sb = new StringBuilder("version: 2\nethernets:\n");
        var slots = (ci.IpConfig ?? []).Keys.Order(StringComparer.Ordinal).ToList();
        // DNS without any ip_config: attach it to every NIC with DHCP, so the setting is not silently lost.
        if (slots.Count == 0)
            slots = [.. input.Macs.Keys.Order(StringComparer.Ordinal)];
        foreach (var slot in slots)
        {
            var ip = ci.IpConfig?.GetValueOrDefault(slot) ?? new CloudInitIpConfigSpec { Ipv4 = new CloudInitIpv4Spec { Address = "dhcp" } };
            sb.Append("  ").Append(slot).Append(":\n");
            if (input.Macs.GetValueOrDefault(slot) is { } mac)
                sb.Append("    match:\n      macaddress: ").Append(Quote(mac.ToLowerInvariant())).Append('\n');
            var addresses = new List<string>();
            switch (ip.Ipv4?.Address)
            {
                case "dhcp": sb.Append("    dhcp4: true\n"); break;
                case { } v4: addresses.Add(v4); break;
            }
            switch (ip.Ipv6?.Address)
            {
                case "dhcp": sb.Append("    dhcp6: true\n"); break;
                case "auto": sb.Append("    dhcp6: false\n    accept-ra: true\n"); break;
                case { } v6: addresses.Add(v6); break;
            }
            if (addresses.Count > 0)
            {
                sb.Append("    addresses:\n");
                foreach (var a in addresses)
                    sb.Append("      - ").Append(Quote(a)).Append('\n');
            }
            if (ip.Ipv4?.Gateway is { } gw4)
                sb.Append("    gateway4: ").Append(Quote(gw4)).Append('\n');
            if (ip.Ipv6?.Gateway is { } gw6)
                sb.Append("    gateway6: ").Append(Quote(gw6)).Append('\n');
            if (ci.Dns is { } dns)
            {
                sb.Append("    nameservers:\n");
                if (dns.Servers is { Count: > 0 } servers)
                    sb.Append("      addresses: [").Append(string.Join(", ", servers.Select(Quote))).Append("]\n");
                if (SearchOf(dns) is { Count: > 0 } search)
                    sb.Append("      search: [").Append(string.Join(", ", search.Select(Quote))).Append("]\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>OpenStack network_data.json (ConfigDrive2) from <c>ip_config</c> and <c>dns</c>; null when neither is set.</summary>
    public static string? NetworkData(SeedInput input)
    {
        var ci = input.CloudInit;
        if (ci.IpConfig is not { Count: > 0 } && ci.Dns is null)
            return null;
        var links = new JsonArray();
        var networks = new JsonArray();
        foreach (var (slot, ip) in (ci.IpConfig ?? []).OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            links.Add(new JsonObject { ["id"] = slot, ["type"] = "phy", ["ethernet_mac_address"] = input.Macs.GetValueOrDefault(slot)?.ToLowerInvariant() });
            if (ip.Ipv4 is { } v4)
                networks.Add(v4.Address == "dhcp" ? Network(slot, "ipv4", "ipv4_dhcp") : Static(slot, "ipv4", v4.Address!, v4.Gateway, AddressFamily.InterNetwork));
            if (ip.Ipv6 is { } v6)
            {
                networks.Add(v6.Address switch
                {
                    "dhcp" => Network(slot, "ipv6", "ipv6_dhcpv6-stateful"),
                    "auto" => Network(slot, "ipv6", "ipv6_slaac"),
                    _ => Static(slot, "ipv6", v6.Address!, v6.Gateway, AddressFamily.InterNetworkV6),
                });
            }
        }
        var services = new JsonArray();
        foreach (var server in ci.Dns?.Servers ?? [])
            services.Add(new JsonObject { ["type"] = "dns", ["address"] = server });
        var data = new JsonObject { ["links"] = links, ["networks"] = networks, ["services"] = services };
        return JsonSerializer.Serialize(data, JsonIndented) + "\n";
    }

    private static JsonObject Network(string slot, string family, string type) =>
        new() { ["id"] = $"{slot}-{family}", ["link"] = slot, ["type"] = type };

    private static JsonObject Static(string slot, string family, string cidr, string? gateway, AddressFamily af)
    {
        var slash = cidr.IndexOf('/', StringComparison.Ordinal);
        var address = cidr[..slash];
        var prefix = int.Parse(cidr[(slash + 1)..], CultureInfo.InvariantCulture);
        var network = Network(slot, family, family);
        network["ip_address"] = address;
        network["netmask"] = af == AddressFamily.InterNetwork ? Netmask(prefix) : prefix.ToString(CultureInfo.InvariantCulture);
        if (gateway is not null)
        {
            network["routes"] = new JsonArray(new JsonObject
            {
                ["network"] = af == AddressFamily.InterNetwork ? "0.0.0.0" : "::",
                ["netmask"] = af == AddressFamily.InterNetwork ? "0.0.0.0" : "0",
                ["gateway"] = gateway,
            });
        }
        return network;
    }

    private static string Netmask(int prefix)
    {
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        return new IPAddress([(byte)(mask >> 24), (byte)(mask >> 16), (byte)(mask >> 8), (byte)mask]).ToString();
    }

    private static List<string> SearchOf(CloudInitDnsSpec dns) =>
        [.. new[] { dns.Domain }.Concat(dns.Search ?? []).OfType<string>().Distinct(StringComparer.OrdinalIgnoreCase)];

    private static string HostnameOf(SeedInput input) => input.CloudInit.Hostname ?? input.VmName;

    /// <summary>A YAML double-quoted scalar (JSON string syntax is a subset of it).</summary>
    public static string Quote(string value) => JsonSerializer.Serialize(value, Json);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
