namespace Kvm.Agent.Images;

/// <summary>DI registration of the image feature.</summary>
public static class ImageServices
{
    /// <summary>Registers <see cref="Images"/>. Needs the storage feature and an <c>ICommandRunner</c>; uses <see cref="IImageUsage"/> when registered.</summary>
    public static IServiceCollection AddImages(this IServiceCollection services, ImageOptions? options = null)
    {
        services.AddSingleton(options ?? new ImageOptions());
        services.AddSingleton<Images>();
        return services;
    }
}
