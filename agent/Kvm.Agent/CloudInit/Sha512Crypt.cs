using System.Runtime.InteropServices;

namespace Kvm.Agent.CloudInit;

/// <summary>
/// SHA-512 crypt (<c>$6$</c>) through the system's libcrypt, the format /etc/shadow and cloud-init's <c>passwd</c>
/// expect, so the clear password never reaches the seed.
/// </summary>
internal static partial class Sha512Crypt
{
    private static readonly Lock Gate = new();

    /// <summary>The crypt hash of <paramref name="password"/> with a 16-character salt from crypt's alphabet.</summary>
    public static string Hash(string password, string salt)
    {
        // crypt(3) returns a static buffer: one caller at a time.
        lock (Gate)
        {
            var result = crypt(password, "$6$" + salt + "$");
            var text = result == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(result);
            if (text is null || !text.StartsWith("$6$", StringComparison.Ordinal))
                throw new InvalidOperationException("libcrypt could not hash the password with SHA-512 crypt.");
            return text;
        }
    }

    [LibraryImport("libcrypt.so.1", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr crypt(string key, string setting);
}
