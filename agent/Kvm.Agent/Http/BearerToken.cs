using System.Security.Cryptography;
using System.Text;
using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Http;

/// <summary>Everything under <c>/v1/</c> needs <c>Authorization: Bearer &lt;token&gt;</c>; <c>/healthz</c> does not.</summary>
internal static class BearerToken
{
    public static IApplicationBuilder UseBearerToken(this IApplicationBuilder app, string token)
    {
        // Compare digests so the comparison takes the same time whatever the length or prefix of the guess.
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Kvm.Agent.Auth");
        return app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/v1") && !Matches(context.Request.Headers.Authorization.ToString(), expected))
            {
                Log.Unauthorized(logger, context.Request.Method, context.Request.Path);
                throw new AgentProblemException(401, ProblemTypes.Unauthorized, "Unauthorized",
                    "This endpoint needs the header \"Authorization: Bearer <token>\" with the agent's token.");
            }
            await next(context);
        });
    }

    private static bool Matches(string header, byte[] expected)
    {
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, expected);
    }

    /// <summary>
    /// The token from the options, the token file, or a new one generated into <c>&lt;data-dir&gt;/token</c> (mode 0600)
    /// and reused on later starts.
    /// </summary>
    public static (string Token, string? GeneratedFile) Resolve(AgentOptions options)
    {
        if (options.Token is { } t)
            return (t, null);
        if (options.TokenFile is { } file)
            return (File.ReadAllText(file).Trim() is { Length: > 0 } fromFile ? fromFile : throw new ArgumentException($"token file {file} is empty."), null);
        var generated = Path.Combine(options.DataDir, "token");
        if (File.Exists(generated) && File.ReadAllText(generated).Trim() is { Length: > 0 } existing)
            return (existing, null);
        Directory.CreateDirectory(options.DataDir);
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        using (var stream = new FileStream(generated, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            stream.Write(Encoding.UTF8.GetBytes(token + "\n"));
            stream.Flush(true);
        }
        return (token, generated);
    }
}
