using System.Security.Cryptography;
using Kvm.Agent.Storage;

namespace Kvm.Agent.Firmware;

/// <summary>
/// Microsoft's 2023 Secure Boot certificates, which the distribution's OVMF variable template (Debian 12:
/// OVMF_VARS_4M.ms.fd, 2011 certificates only, which expire in 2026) lacks. The agent derives its own template from the
/// distribution's by adding the ones missing: the KEK "Microsoft Corporation KEK 2K CA 2023" and, in db, "Windows UEFI
/// CA 2023" (Windows boot loaders), "Microsoft UEFI CA 2023" (third-party loaders such as shim) and "Microsoft Option
/// ROM UEFI CA 2023". The DER files are Microsoft's published certificates (public keys), pinned here by SHA-256.
/// </summary>
public static class MicrosoftKeys
{
    /// <summary>A certificate the agent enrols, where, and its pinned fingerprint.</summary>
    public sealed record Certificate(string File, string Variable, Guid Vendor, string Sha256);

    /// <summary>The 2023 certificates, KEK first.</summary>
    public static IReadOnlyList<Certificate> Certificates2023 { get; } =
    [
        new("microsoft_corporation_kek_2k_ca_2023.der", "KEK", EfiGuids.GlobalVariable, "3cd3f0309edae228767a976dd40d9f4affc4fbd5218f2e8cc3c9dd97e8ac6f9d"),
        new("windows_uefi_ca_2023.der", "db", EfiGuids.ImageSecurityDatabase, "076f1fea90ac29155ebf77c17682f75f1fdd1be196da302dc8461e350a9ae330"),
        new("microsoft_uefi_ca_2023.der", "db", EfiGuids.ImageSecurityDatabase, "f6124e34125bee3fe6d79a574eaa7b91c0e7bd9d929c1a321178efd611dad901"),
        new("microsoft_option_rom_uefi_ca_2023.der", "db", EfiGuids.ImageSecurityDatabase, "e5be3e64c6e66a281457ecdece0d6d0787577aad2a3a0144262c10c14ba8d8f1"),
    ];

    /// <summary>The DER bytes of an embedded certificate, checked against its pinned fingerprint.</summary>
    public static byte[] Load(Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var stream = typeof(MicrosoftKeys).Assembly.GetManifestResourceStream("Kvm.Agent.Firmware.Certificates." + certificate.File)
            ?? throw new InvalidOperationException($"embedded certificate {certificate.File} is missing.");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        var der = memory.ToArray();
        if (Convert.ToHexStringLower(SHA256.HashData(der)) != certificate.Sha256)
            throw new InvalidOperationException($"embedded certificate {certificate.File} does not match its pinned SHA-256.");
        return der;
    }

    /// <summary>
    /// <paramref name="template"/> with every 2023 certificate it lacks appended to KEK or db (as one more
    /// EFI_SIGNATURE_LIST, owner Microsoft); certificates already present are left alone, so this is idempotent.
    /// A template without a KEK or db (no keys enrolled) is returned unchanged.
    /// </summary>
    public static byte[] Add2023Certificates(byte[] template)
    {
        var store = EfiVarStore.Parse(template);
        foreach (var group in Certificates2023.GroupBy(c => (c.Variable, c.Vendor)))
        {
            if (store.Find(group.Key.Variable, group.Key.Vendor) is not { } variable)
                continue;
            var present = EfiVarStore.ParseSignatureLists(variable.Data).Select(s => Convert.ToHexString(s.Data)).ToHashSet(StringComparer.Ordinal);
            var added = group.Select(Load).Where(der => !present.Contains(Convert.ToHexString(der))).ToList();
            if (added.Count == 0)
                continue;
            var data = variable.Data.Concat(added.SelectMany(der => EfiVarStore.X509SignatureList(EfiGuids.MicrosoftOwner, der))).ToArray();
            store = store.With(group.Key.Variable, group.Key.Vendor, data);
        }
        return store.ToArray();
    }

    /// <summary>
    /// The agent's template with the 2023 certificates, derived once from <paramref name="source"/> into
    /// <c>&lt;data-dir&gt;/firmware/</c> (named by a hash of its input, written atomically) and reused for every VM.
    /// </summary>
    public static string EnsureTemplate(string source, string dataDir)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(dataDir);
        var original = File.ReadAllBytes(source);
        var key = Convert.ToHexStringLower(SHA256.HashData(original.Concat(Certificates2023.SelectMany(c => Convert.FromHexString(c.Sha256))).ToArray()))[..16];
        var target = Path.Combine(dataDir, "firmware", $"{Path.GetFileNameWithoutExtension(source)}.ms2023-{key}.fd");
        if (File.Exists(target))
            return target;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        SafeFile.WriteAtomic(target, Add2023Certificates(original));
        return target;
    }
}
