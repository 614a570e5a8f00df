namespace Kvm.Agent.Storage;

/// <summary>
/// Grows an image that a running VM holds (QMP <c>block_resize</c>). Implemented by the VM feature and
/// registered in DI when it exists; without it, volumes only grow offline.
/// </summary>
public interface IOnlineResizer
{
    /// <summary>
    /// Grows the image at <paramref name="path"/> (volume <paramref name="volumeId"/>) through the running VM that
    /// holds it and returns true; returns false, changing nothing, when no running VM holds it.
    /// </summary>
    Task<bool> TryGrowAsync(string volumeId, string path, long sizeBytes, CancellationToken cancellationToken);
}
