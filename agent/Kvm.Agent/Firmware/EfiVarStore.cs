using System.Buffers.Binary;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Kvm.Agent.Firmware;

/// <summary>One variable of an EFI variable store.</summary>
public sealed record EfiVariable(string Name, Guid Vendor, uint Attributes, byte[] Data)
{
    /// <summary>Where its header starts in the image.</summary>
    public int Offset { get; init; }
    /// <summary>The header's state byte.</summary>
    public byte State { get; init; }
    /// <summary>EFI_TIME of a time-based authenticated variable (16 bytes).</summary>
    public byte[] Timestamp { get; init; } = new byte[16];
    /// <summary>Monotonic count of a count-based authenticated variable.</summary>
    public ulong MonotonicCount { get; init; }
    /// <summary>Public-key index of a count-based authenticated variable.</summary>
    public uint PubKeyIndex { get; init; }
}

/// <summary>One entry of an EFI_SIGNATURE_LIST: a certificate or a hash, with its owner.</summary>
public sealed record EfiSignature(Guid Type, Guid Owner, byte[] Data)
{
    /// <summary>The X.509 certificate's subject, or null for a hash.</summary>
    public string? Subject => Type == EfiGuids.CertX509 ? X509CertificateLoader.LoadCertificate(Data).Subject : null;

    /// <summary>The certificate's common name, or null.</summary>
    public string? CommonName => Type == EfiGuids.CertX509 ? X509CertificateLoader.LoadCertificate(Data).GetNameInfo(X509NameType.SimpleName, forIssuer: false) : null;
}

/// <summary>GUIDs of the UEFI specification and EDK II that the variable store uses.</summary>
public static class EfiGuids
{
    /// <summary>EFI_GLOBAL_VARIABLE: PK, KEK, SecureBoot, SetupMode, Boot####.</summary>
    public static readonly Guid GlobalVariable = new("8be4df61-93ca-11d2-aa0d-00e098032b8c");
    /// <summary>EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx.</summary>
    public static readonly Guid ImageSecurityDatabase = new("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
    /// <summary>EDK II's SecureBootEnable switch.</summary>
    public static readonly Guid SecureBootEnableDisable = new("f0a30bc7-af08-4556-99c4-001009c93a44");
    /// <summary>EDK II's CustomMode switch.</summary>
    public static readonly Guid CustomMode = new("c076ec0c-7028-4399-a072-71ee5c448b9f");
    /// <summary>The store header's format GUID for authenticated variables.</summary>
    public static readonly Guid AuthenticatedVariableStore = new("aaf32c78-947b-439a-a180-2e144ec37792");
    /// <summary>EFI_CERT_X509_GUID.</summary>
    public static readonly Guid CertX509 = new("a5c059a1-94e4-4aa7-87b5-ab155c2bf072");
    /// <summary>EFI_CERT_SHA256_GUID.</summary>
    public static readonly Guid CertSha256 = new("c1c41626-504c-4092-aca9-41f936934328");
    /// <summary>The signature owner Microsoft uses for its certificates.</summary>
    public static readonly Guid MicrosoftOwner = new("77fa9abd-0359-4d32-bd60-28f4e78f784b");
}

/// <summary>
/// Reads and edits an OVMF variable store image (the efidisk): a firmware volume header, an authenticated
/// variable store header, then variables, each a 60-byte header (start id 0x55AA, state, attributes, monotonic
/// count, EFI_TIME, public-key index, name size, data size, vendor GUID), its UTF-16 name and its data, every
/// header 4-byte aligned. A variable is live while its state is VAR_ADDED (0x3F); an update marks the old copy
/// deleted and appends the new one, as the firmware itself does. Pure code: bytes in, bytes out.
/// </summary>
public sealed class EfiVarStore
{
    private const int HeaderSize = 60;
    private const ushort StartId = 0x55AA;
    private const byte VarAdded = 0x3F;
    private const byte VarInDeletedTransition = 0xFE;
    private const byte VarDeleted = 0xFD;
    private readonly byte[] _image;
    private readonly int _storeStart;
    private readonly int _storeEnd;

    private EfiVarStore(byte[] image, int storeStart, int storeEnd, List<EfiVariable> all, int freeOffset)
    {
        _image = image;
        _storeStart = storeStart;
        _storeEnd = storeEnd;
        All = all;
        FreeOffset = freeOffset;
    }

    /// <summary>Every variable header in the store, deleted copies included, in store order.</summary>
    public IReadOnlyList<EfiVariable> All { get; }

    /// <summary>Where the next variable would go.</summary>
    public int FreeOffset { get; }

    /// <summary>Bytes left for new variables.</summary>
    public int FreeBytes => _storeEnd - FreeOffset;

    /// <summary>The image as it is now.</summary>
    public byte[] ToArray() => (byte[])_image.Clone();

    /// <summary>The live variables (one per name and vendor).</summary>
    public IReadOnlyList<EfiVariable> Variables =>
        [.. All.Where(v => v.State == VarAdded
            || (v.State == (VarAdded & VarInDeletedTransition) && !All.Any(o => o.State == VarAdded && o.Name == v.Name && o.Vendor == v.Vendor)))];

    /// <summary>The live variable, or null.</summary>
    public EfiVariable? Find(string name, Guid vendor) => Variables.FirstOrDefault(v => v.Name == name && v.Vendor == vendor);

    /// <summary>Parses an OVMF variable store image; <see cref="InvalidDataException"/> when it is not one.</summary>
    public static EfiVarStore Parse(byte[] image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Length < 0x48 + 28 || Encoding.ASCII.GetString(image, 0x28, 4) != "_FVH")
            throw new InvalidDataException("not a firmware volume (no _FVH signature).");
        int storeStart = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(0x30));
        if (storeStart + 28 > image.Length)
            throw new InvalidDataException("firmware volume header length out of range.");
        var format = new Guid(image.AsSpan(storeStart, 16));
        if (format != EfiGuids.AuthenticatedVariableStore)
            throw new InvalidDataException($"variable store format {format} is not the authenticated one OVMF uses.");
        var size = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(storeStart + 16));
        var storeEnd = (int)Math.Min(image.Length, storeStart + (long)size);
        var all = new List<EfiVariable>();
        var offset = storeStart + 28;
        while (offset + HeaderSize <= storeEnd && BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(offset)) == StartId)
        {
            var h = image.AsSpan(offset, HeaderSize);
            var nameSize = BinaryPrimitives.ReadUInt32LittleEndian(h[36..]);
            var dataSize = BinaryPrimitives.ReadUInt32LittleEndian(h[40..]);
            var end = offset + HeaderSize + (long)nameSize + dataSize;
            if (end > storeEnd || nameSize % 2 != 0)
                throw new InvalidDataException($"variable at 0x{offset:x} runs past the store.");
            var name = Encoding.Unicode.GetString(image, offset + HeaderSize, (int)nameSize).TrimEnd('\0');
            all.Add(new EfiVariable(name, new Guid(h[44..60]), BinaryPrimitives.ReadUInt32LittleEndian(h[4..]),
                image.AsSpan(offset + HeaderSize + (int)nameSize, (int)dataSize).ToArray())
            {
                Offset = offset,
                State = h[2],
                MonotonicCount = BinaryPrimitives.ReadUInt64LittleEndian(h[8..]),
                Timestamp = h[16..32].ToArray(),
                PubKeyIndex = BinaryPrimitives.ReadUInt32LittleEndian(h[32..]),
            });
            offset = Align4((int)end);
        }
        return new EfiVarStore(image, storeStart, storeEnd, all, offset);
    }

    /// <summary>
    /// The store with <paramref name="name"/> set to <paramref name="data"/>: the live copy (if any) is marked deleted and a
    /// new one appended, keeping the old attributes and timestamp unless given.
    /// </summary>
    public EfiVarStore With(string name, Guid vendor, byte[] data, uint? attributes = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        var old = Find(name, vendor);
        var nameBytes = Encoding.Unicode.GetBytes(name + "\0");
        var needed = HeaderSize + nameBytes.Length + data.Length;
        if (FreeOffset + needed > _storeEnd)
            throw new InvalidDataException($"the variable store has {FreeBytes} bytes free; {name} needs {needed}.");
        var image = (byte[])_image.Clone();
        var h = image.AsSpan(FreeOffset, HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h, StartId);
        h[2] = VarAdded;
        h[3] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], attributes ?? old?.Attributes ?? 0x7);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], old?.MonotonicCount ?? 0);
        (old?.Timestamp ?? new byte[16]).CopyTo(h[16..32]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[32..], old?.PubKeyIndex ?? 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[36..], (uint)nameBytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[40..], (uint)data.Length);
        vendor.TryWriteBytes(h[44..60]);
        nameBytes.CopyTo(image, FreeOffset + HeaderSize);
        data.CopyTo(image, FreeOffset + HeaderSize + nameBytes.Length);
        if (old is not null)
            image[old.Offset + 2] &= VarDeleted;
        return Parse(image);
    }

    /// <summary>The entries of a variable holding EFI_SIGNATURE_LISTs (PK, KEK, db, dbx).</summary>
    public static IReadOnlyList<EfiSignature> ParseSignatureLists(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var result = new List<EfiSignature>();
        var offset = 0;
        while (offset + 28 <= data.Length)
        {
            var type = new Guid(data.AsSpan(offset, 16));
            var listSize = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 16));
            var headerSize = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 20));
            var signatureSize = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 24));
            if (listSize < 28 || offset + (long)listSize > data.Length || signatureSize < 16 || 28 + (long)headerSize > listSize)
                throw new InvalidDataException($"bad EFI_SIGNATURE_LIST at {offset}.");
            for (var s = offset + 28 + (int)headerSize; s + signatureSize <= offset + listSize; s += (int)signatureSize)
                result.Add(new EfiSignature(type, new Guid(data.AsSpan(s, 16)), data.AsSpan(s + 16, (int)signatureSize - 16).ToArray()));
            offset += (int)listSize;
        }
        if (offset != data.Length)
            throw new InvalidDataException("trailing bytes after the last EFI_SIGNATURE_LIST.");
        return result;
    }

    /// <summary>One EFI_SIGNATURE_LIST holding one X.509 certificate.</summary>
    public static byte[] X509SignatureList(Guid owner, byte[] der)
    {
        ArgumentNullException.ThrowIfNull(der);
        var list = new byte[28 + 16 + der.Length];
        EfiGuids.CertX509.TryWriteBytes(list);
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(16), (uint)list.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(20), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(list.AsSpan(24), (uint)(16 + der.Length));
        owner.TryWriteBytes(list.AsSpan(28));
        der.CopyTo(list, 44);
        return list;
    }

    /// <summary>What a guest's Secure Boot depends on, read from the store.</summary>
    public SecureBootState SecureBoot()
    {
        IReadOnlyList<EfiSignature> Entries(string name, Guid vendor) =>
            Find(name, vendor) is { } v ? ParseSignatureLists(v.Data) : [];
        var enable = Find("SecureBootEnable", EfiGuids.SecureBootEnableDisable);
        return new SecureBootState(
            enable is { Data: [1, ..] },
            Entries("PK", EfiGuids.GlobalVariable),
            Entries("KEK", EfiGuids.GlobalVariable),
            Entries("db", EfiGuids.ImageSecurityDatabase),
            Entries("dbx", EfiGuids.ImageSecurityDatabase));
    }

    private static int Align4(int value) => (value + 3) & ~3;
}

/// <summary>The Secure Boot keys of a variable store.</summary>
public sealed record SecureBootState(
    bool SecureBootEnable,
    IReadOnlyList<EfiSignature> PlatformKeys,
    IReadOnlyList<EfiSignature> KeyExchangeKeys,
    IReadOnlyList<EfiSignature> Db,
    IReadOnlyList<EfiSignature> Dbx)
{
    /// <summary>Enrolled (user mode): a platform key exists and the switch is on.</summary>
    public bool Enforcing => SecureBootEnable && PlatformKeys.Count > 0;
}
