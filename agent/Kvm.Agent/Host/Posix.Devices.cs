using System.Runtime.InteropServices;

namespace Kvm.Agent.Host;

internal static partial class Posix
{
    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int stat(string path, byte* buffer);

    /// <summary>True when <paramref name="path"/>, links followed (/dev/serial/by-id/…), is a character device.</summary>
    public static unsafe bool IsCharacterDevice(string path)
    {
        const uint S_IFMT = 0xF000, S_IFCHR = 0x2000;
        var buffer = stackalloc byte[256];
        if (stat(path, buffer) != 0)
            return false;
        var offset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        return (*(uint*)(buffer + offset) & S_IFMT) == S_IFCHR;
    }
}
