using System.Runtime.InteropServices;
using Kvm.Agent.Problems;

namespace Kvm.Agent.Storage;

/// <summary>
/// How the agent puts files in place: written under a hidden temp name in the target's directory, flushed,
/// then moved, so a crash or a full disk never leaves a half-written file and a create never replaces
/// somebody else's file.
/// </summary>
internal static class SafeFile
{
    /// <summary>Prefix of in-flight files; never a valid volume name, so listings skip them.</summary>
    public const string TempPrefix = ".kvm-tmp-";

    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1;
    private const int EExist = 17;
    private const int ENoSpc = 28;
    private const int EInval = 22;
    private const int ENoSys = 38;
    private const int ENotSup = 95;
    private const int ErrorDiskFull = 0x70;
    private const int ErrorHandleDiskFull = 0x27;

    public static string TempPathFor(string target) =>
        Path.Combine(Path.GetDirectoryName(target)!, TempPrefix + Guid.NewGuid().ToString("N")[..12] + "-" + Path.GetFileName(target));

    /// <summary>True when anything (file, directory, symlink, even a dangling one) has this name.</summary>
    public static bool EntryExists(string path) =>
        File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>
    /// Moves <paramref name="temp"/> to <paramref name="target"/> only when nothing has that name; false
    /// (and <paramref name="temp"/> left where it is) when something does. Atomic: two creates racing for
    /// one name cannot both win, unlike check-then-rename.
    /// </summary>
    public static bool MoveNoReplace(string temp, string target)
    {
        int errno;
        try
        {
            if (renameat2(AtFdCwd, temp, AtFdCwd, target, RenameNoReplace) == 0)
                return true;
            errno = Marshal.GetLastPInvokeError();
        }
        catch (EntryPointNotFoundException)
        {
            errno = ENoSys;
        }
        if (errno == EExist)
            return false;
        // Some file systems lack RENAME_NOREPLACE; link() refuses an existing name just the same.
        if (errno is EInval or ENoSys or ENotSup)
        {
            if (link(temp, target) == 0)
            {
                File.Delete(temp);
                return true;
            }
            errno = Marshal.GetLastPInvokeError();
            if (errno == EExist)
                return false;
        }
        throw new IOException($"Cannot move {temp} to {target}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="bytes"/> atomically (temp, fsync, rename, fsync dir).</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes)
    {
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        var temp = TempPathFor(path);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            FsyncDirectory(directory);
        }
        catch (Exception e)
        {
            DeleteQuietly(temp);
            if (IsNoSpace(e))
                throw AgentProblemException.NoSpace($"No space left to write {path}.");
            throw;
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> to a new file <paramref name="target"/> (temp, fsync, no-replace move).
    /// False when <paramref name="target"/> already exists; it is then left as it was.
    /// </summary>
    public static bool CopyNew(string source, string target)
    {
        var directory = Path.GetDirectoryName(target)!;
        var temp = TempPathFor(target);
        var moved = false;
        try
        {
            using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read))
            using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                input.CopyTo(output);
                output.Flush(flushToDisk: true);
            }
            moved = MoveNoReplace(temp, target);
            if (moved)
                FsyncDirectory(directory);
            return moved;
        }
        catch (Exception e) when (IsNoSpace(e))
        {
            throw AgentProblemException.NoSpace($"No space left in {directory} to create {Path.GetFileName(target)}.");
        }
        finally
        {
            // A plain copy on a full disk leaves a 0-byte file: the temp name is what we clean up.
            if (!moved)
                DeleteQuietly(temp);
        }
    }

    public static void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public static bool IsNoSpace(Exception e) =>
        e is IOException io && (io.HResult is ENoSpc or ErrorDiskFull or ErrorHandleDiskFull
            || (io.HResult & 0xFFFF) is ErrorDiskFull or ErrorHandleDiskFull
            || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase));

    /// <summary>Makes a rename in <paramref name="directory"/> durable (the rename itself lives in the directory).</summary>
    public static void FsyncDirectory(string directory)
    {
        var fd = open(directory, 0);
        if (fd < 0)
            return;
        try
        {
            _ = fsync(fd);
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>The canonical path (every symlink resolved), or null when it does not resolve.</summary>
    public static string? RealPath(string path)
    {
        var resolved = realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
            return null;
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            free(resolved);
        }
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="directory"/> itself or lies below it.</summary>
    public static bool IsWithin(string path, string directory)
    {
        var dir = directory.TrimEnd('/');
        return path == dir || dir.Length == 0 || path.StartsWith(dir + "/", StringComparison.Ordinal);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int renameat2(int olddirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldpath, int newdirfd,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string newpath, uint flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string oldpath, [MarshalAs(UnmanagedType.LPUTF8Str)] string newpath);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string pathname, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr ptr);
}
