using System.Runtime.InteropServices;

namespace Kvm.Agent.Host;

/// <summary>The few libc calls .NET does not expose: posix_spawn with a new session, waitpid, kill.</summary>
internal static partial class Posix
{
    public const int WNOHANG = 1;
    public const int ECHILD = 10;
    public const int ESRCH = 3;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGSTOP = 19;
    public const int SIGCONT = 18;
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;
    // glibc's <spawn.h>: POSIX_SPAWN_SETSIGDEF 0x04, POSIX_SPAWN_SETSIGMASK 0x08, POSIX_SPAWN_SETSID 0x80 (glibc ≥ 2.26).
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int lstat(string path, byte* buffer);

    /// <summary>True when <paramref name="path"/> itself (not a link target) is a socket.</summary>
    public static unsafe bool IsSocket(string path)
    {
        // struct stat is at most 144 bytes on Linux ABIs; st_mode sits at offset 24 on x86_64 and 16 on arm64.
        const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000;
        var buffer = stackalloc byte[256];
        if (lstat(path, buffer) != 0)
            return false;
        var offset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        return (*(uint*)(buffer + offset) & S_IFMT) == S_IFSOCK;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnp(out int pid, IntPtr file, IntPtr fileActions, IntPtr attr, IntPtr argv, IntPtr envp);

    [LibraryImport("libc")]
    public static partial int posix_spawnattr_init(IntPtr attr);

    [LibraryImport("libc")]
    public static partial int posix_spawnattr_destroy(IntPtr attr);

    [LibraryImport("libc")]
    public static partial int posix_spawnattr_setflags(IntPtr attr, short flags);

    [LibraryImport("libc")]
    public static partial int posix_spawnattr_setsigmask(IntPtr attr, IntPtr sigset);

    [LibraryImport("libc")]
    public static partial int posix_spawnattr_setsigdefault(IntPtr attr, IntPtr sigset);

    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_init(IntPtr actions);

    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_destroy(IntPtr actions);

    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_addopen(IntPtr actions, int fd, IntPtr path, int flags, uint mode);

    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_adddup2(IntPtr actions, int fd, int newFd);

    [LibraryImport("libc")]
    public static partial int sigemptyset(IntPtr set);

    [LibraryImport("libc")]
    public static partial int sigfillset(IntPtr set);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);
}

/// <summary>Durability helpers that need raw file descriptors.</summary>
internal static partial class Durable
{
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    /// <summary>Makes a rename or unlink in <paramref name="directory"/> durable.</summary>
    public static void SyncDirectory(string directory)
    {
        var fd = open(directory, Posix.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return;
        fsync(fd);
        close(fd);
    }

    /// <summary>Writes <paramref name="bytes"/> to a new temp file next to <paramref name="path"/>, fsyncs it, and returns the temp path.</summary>
    public static string WriteTemp(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        return temp;
    }

    /// <summary>Replaces <paramref name="path"/> atomically: readers see the old or the new bytes, never a mix, even after a crash.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = WriteTemp(path, bytes);
        try
        {
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>
    /// Creates <paramref name="path"/> with its full content only if it does not exist (link-then-unlink, so two
    /// writers can never both win); false when it exists.
    /// </summary>
    public static bool CreateExclusively(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = WriteTemp(path, bytes);
        try
        {
            // .NET implements a non-overwriting move on Linux with link(2), which fails when the target exists.
            File.Move(temp, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
        finally
        {
            File.Delete(temp);
        }
        SyncDirectory(Path.GetDirectoryName(path)!);
        return true;
    }
}
