using System.Runtime.InteropServices;

namespace Kvm.Agent.Storage;

/// <summary>Which running VMs hold which host block devices: implemented by the VM runtime, read when a VM starts or plugs one.</summary>
public interface IHostDeviceUsage
{
    /// <summary>Every (vm_id, slot, path, read_only) where a running VM has a <c>host_device</c> disk.</summary>
    IReadOnlyList<(long VmId, string Slot, string Path, bool ReadOnly)> RunningHostDevices();
}

/// <summary>
/// Host block devices as disks (<c>disks.X.host_device</c>): what <c>stat(2)</c> says a path is (links followed), the device
/// number that tells two paths of one device apart from two devices, and the size the kernel reports (<c>BLKGETSIZE64</c>).
/// </summary>
public static partial class BlockDevices
{
    private const uint S_IFMT = 0xF000;
    private const uint S_IFBLK = 0x6000;
    private const int O_RDONLY_CLOEXEC = 0x80000;
    // _IOR(0x12, 114, size_t): the device's size in bytes.
    private const ulong BLKGETSIZE64 = 0x80081272;

    /// <summary>The device number of the block device <paramref name="path"/> names, or a sentence saying why it is not one.</summary>
    public static (ulong? Device, string? Problem) Check(string path)
    {
        if (!Stat(path, out var mode, out var rdev, out var errno))
            return (null, errno == 2 /* ENOENT */ ? $"\"{path}\" does not exist on this host." : $"\"{path}\" cannot be read ({Marshal.GetPInvokeErrorMessage(errno)}).");
        if ((mode & S_IFMT) != S_IFBLK)
            return (null, $"\"{path}\" is {KindOf(mode)}, not a block device; name a disk, partition or other block device (for example under /dev/disk/by-id).");
        return (rdev, null);
    }

    /// <summary>The size of block device <paramref name="path"/> in bytes, or null when it cannot be read.</summary>
    public static long? SizeOf(string path)
    {
        var (device, _) = Check(path);
        if (device is null)
            return null;
        var fd = open(path, O_RDONLY_CLOEXEC);
        if (fd < 0)
            return null;
        try
        {
            return ioctl(fd, BLKGETSIZE64, out var bytes) == 0 ? (long)bytes : null;
        }
        finally
        {
            close(fd);
        }
    }

    private static string KindOf(uint mode) => (mode & S_IFMT) switch
    {
        0x8000 => "a regular file",
        0x4000 => "a directory",
        0x2000 => "a character device",
        0x1000 => "a FIFO",
        0xC000 => "a socket",
        _ => "not a block device",
    };

    private static unsafe bool Stat(string path, out uint mode, out ulong rdev, out int errno)
    {
        // struct stat: st_mode at 24 and st_rdev at 40 on x86_64; 16 and 32 on arm64 (the generic layout).
        var buffer = stackalloc byte[256];
        if (stat(path, buffer) != 0)
        {
            (mode, rdev, errno) = (0, 0, Marshal.GetLastPInvokeError());
            return false;
        }
        var x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;
        mode = *(uint*)(buffer + (x64 ? 24 : 16));
        rdev = *(ulong*)(buffer + (x64 ? 40 : 32));
        errno = 0;
        return true;
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int stat(string path, byte* buffer);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, out ulong value);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
