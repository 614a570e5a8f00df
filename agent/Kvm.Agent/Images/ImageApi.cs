using Kvm.Agent.Storage;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kvm.Agent.Images;

/// <summary>HTTP surface of images: <c>/v1/images</c>.</summary>
public static class ImageApi
{
    /// <summary>Maps the image endpoints; returns their group for conventions (auth).</summary>
    public static RouteGroupBuilder MapImages(this IEndpointRouteBuilder routes)
    {
        var images = routes.MapGroup("/v1/images");
        images.MapGet("", ListImages);
        images.MapPost("", CreateImage);
        images.MapGet("/{pool}/{name}", GetImage);
        images.MapDelete("/{pool}/{name}", DeleteImage);
        return images;
    }

    /// <summary>GET /v1/images[?pool=].</summary>
    public static JsonHttpResult<List<Image>> ListImages(string? pool, Images images) =>
        TypedResults.Json(images.List(pool), ModelJsonContext.Default.ListImage);

    /// <summary>GET /v1/images/{pool}/{name}.</summary>
    public static JsonHttpResult<Image> GetImage(string pool, string name, Images images) =>
        TypedResults.Json(images.Get(pool, name), ModelJsonContext.Default.Image);

    /// <summary>POST /v1/images: imports synchronously, bounded by the import timeout.</summary>
    public static async Task<JsonHttpResult<Image>> CreateImage(HttpContext context, Images images)
    {
        var spec = await ModelHttp.ReadAsync(context.Request, ModelJsonContext.Default.ImageSpec, context.RequestAborted);
        var image = await images.ImportAsync(spec, context.RequestAborted);
        context.Response.Headers.Location = $"/v1/images/{image.ImageId}";
        return TypedResults.Json(image, ModelJsonContext.Default.Image, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>DELETE /v1/images/{pool}/{name}: refused while linked clones use it.</summary>
    public static async Task<NoContent> DeleteImage(string pool, string name, Images images, CancellationToken cancellationToken)
    {
        await images.DeleteAsync(pool, name, cancellationToken);
        return TypedResults.NoContent();
    }
}
