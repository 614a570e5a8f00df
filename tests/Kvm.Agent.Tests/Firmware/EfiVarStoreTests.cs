using System.Buffers.Binary;
using System.Text;
using Kvm.Agent.Firmware;

namespace Kvm.Agent.Tests.Firmware;

/// <summary>
/// The variable store parser and editor against the host's OVMF templates (the ovmf package is a host package) and
/// synthetic stores.
/// </summary>
public sealed class EfiVarStoreTests
{
    private const string MsTemplate = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
    private const string EmptyTemplate = "/usr/share/OVMF/OVMF_VARS_4M.fd";

    private static List<string?> Names(IEnumerable<EfiSignature> signatures) => [.. signatures.Select(s => s.CommonName)];

    [Fact]
    public void TheDistributionsEnrolledTemplateHasTheDebianPlatformKeyAndMicrosofts2011Certificates()
    {
        var state = EfiVarStore.Parse(File.ReadAllBytes(MsTemplate)).SecureBoot();
        Assert.True(state.SecureBootEnable);
        Assert.True(state.Enforcing);
        Assert.Contains("Debian UEFI Secure Boot (PK/KEK key)", Names(state.PlatformKeys));
        Assert.Contains("Microsoft Corporation KEK CA 2011", Names(state.KeyExchangeKeys));
        Assert.Contains("Microsoft Windows Production PCA 2011", Names(state.Db));
        Assert.Contains("Microsoft Corporation UEFI CA 2011", Names(state.Db));
        Assert.All(state.PlatformKeys.Concat(state.KeyExchangeKeys).Concat(state.Db), s => Assert.Equal(EfiGuids.CertX509, s.Type));
    }

    [Fact]
    public void TheEmptyTemplateHasNoKeysAndDoesNotEnforce()
    {
        var store = EfiVarStore.Parse(File.ReadAllBytes(EmptyTemplate));
        Assert.Empty(store.Variables);
        var state = store.SecureBoot();
        Assert.False(state.Enforcing);
        Assert.Empty(state.PlatformKeys);
        Assert.Equal(MicrosoftKeys.Add2023Certificates(File.ReadAllBytes(EmptyTemplate)), File.ReadAllBytes(EmptyTemplate));
    }

    [Fact]
    public void Adding2023CertificatesKeepsThe2011OnesAndIsIdempotent()
    {
        var original = File.ReadAllBytes(MsTemplate);
        var before = EfiVarStore.Parse(original).SecureBoot();
        var image = MicrosoftKeys.Add2023Certificates(original);
        Assert.Equal(original.Length, image.Length);
        var store = EfiVarStore.Parse(image);
        var after = store.SecureBoot();

        Assert.Contains("Microsoft Corporation KEK CA 2011", Names(after.KeyExchangeKeys));
        Assert.Contains("Microsoft Corporation KEK 2K CA 2023", Names(after.KeyExchangeKeys));
        foreach (var name in new[] { "Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011", "Windows UEFI CA 2023", "Microsoft UEFI CA 2023", "Microsoft Option ROM UEFI CA 2023" })
            Assert.Contains(name, Names(after.Db));
        Assert.Equal(before.KeyExchangeKeys.Count + 1, after.KeyExchangeKeys.Count);
        Assert.Equal(before.Db.Count + 3, after.Db.Count);
        Assert.Equal(Names(before.PlatformKeys), Names(after.PlatformKeys));
        Assert.Equal(before.Dbx.Count, after.Dbx.Count);
        Assert.True(after.Enforcing);
        Assert.All(after.Db.Where(s => s.CommonName!.EndsWith("2023", StringComparison.Ordinal)), s => Assert.Equal(EfiGuids.MicrosoftOwner, s.Owner));

        // The old copies are marked deleted (state 0x3D) and the new ones appended, as the firmware does; the
        // authenticated attributes and timestamp are kept.
        var db = store.All.Where(v => v.Name == "db").ToList();
        Assert.Equal([0x3D, 0x3F], db.Select(v => v.State));
        Assert.Equal(db[0].Attributes, db[1].Attributes);
        Assert.Equal(db[0].Timestamp, db[1].Timestamp);
        Assert.Single(store.Variables, v => v.Name == "db");

        Assert.Equal(image, MicrosoftKeys.Add2023Certificates(image));
        // Everything outside the variable area (firmware volume header, fault-tolerant-write area) is untouched.
        Assert.Equal(original.AsSpan(0, 0x48 + 28).ToArray(), image.AsSpan(0, 0x48 + 28).ToArray());
        Assert.Equal(original.AsSpan(store.FreeOffset).ToArray(), image.AsSpan(store.FreeOffset).ToArray());
    }

    [Fact]
    public void TheEmbeddedCertificatesMatchTheirPinnedFingerprints()
    {
        foreach (var certificate in MicrosoftKeys.Certificates2023)
            Assert.NotEmpty(MicrosoftKeys.Load(certificate));
    }

    [Fact]
    public void ASyntheticStoreRoundTripsAndRefusesToOverflow()
    {
        var store = EfiVarStore.Parse(Synthetic(storeSize: 512));
        Assert.Empty(store.All);
        var vendor = Guid.NewGuid();
        store = store.With("Test", vendor, [1, 2, 3], attributes: 0x7);
        store = store.With("Test", vendor, [4, 5]);
        var live = Assert.Single(store.Variables);
        Assert.Equal(("Test", vendor, 0x7u), (live.Name, live.Vendor, live.Attributes));
        Assert.Equal([4, 5], live.Data);
        Assert.Equal(0, live.Offset % 4);
        Assert.Equal(2, store.All.Count);
        Assert.Throws<InvalidDataException>(() => store.With("Big", vendor, new byte[store.FreeBytes]));
    }

    [Fact]
    public void GarbageIsRefused()
    {
        Assert.Throws<InvalidDataException>(() => EfiVarStore.Parse(new byte[4096]));
        var image = Synthetic(storeSize: 512);
        image[0x48] ^= 0xFF; // another store format GUID
        Assert.Throws<InvalidDataException>(() => EfiVarStore.Parse(image));
        var list = EfiVarStore.X509SignatureList(Guid.NewGuid(), [0x30, 0x00]);
        Assert.Single(EfiVarStore.ParseSignatureLists(list));
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(16), (uint)list.Length + 1);
        Assert.Throws<InvalidDataException>(() => EfiVarStore.ParseSignatureLists(list));
        Assert.Throws<InvalidDataException>(() => EfiVarStore.ParseSignatureLists([.. EfiVarStore.X509SignatureList(Guid.NewGuid(), [0x30, 0x00]), 0]));
    }

    /// <summary>A firmware volume header (0x48 bytes) and an empty authenticated variable store of <paramref name="storeSize"/> bytes.</summary>
    private static byte[] Synthetic(int storeSize)
    {
        var image = new byte[0x48 + storeSize];
        Array.Fill(image, (byte)0xFF, 0x48, storeSize);
        Encoding.ASCII.GetBytes("_FVH").CopyTo(image, 0x28);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(0x30), 0x48);
        EfiGuids.AuthenticatedVariableStore.TryWriteBytes(image.AsSpan(0x48));
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x48 + 16), (uint)storeSize);
        image[0x48 + 20] = 0x5A;
        image[0x48 + 21] = 0xFE;
        image.AsSpan(0x48 + 22, 6).Clear();
        return image;
    }
}
