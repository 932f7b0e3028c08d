// The standalone host's credential (docs/security.md): with CloudSoup__ApiKey set, every request must carry the key,
// as "x-api-key: KEY" or "Authorization: Bearer KEY", or it is answered 401 before any handler runs. The comparison
// hashes both sides with SHA-256 and compares the hashes in constant time, so neither the key's content nor its length
// shows in the response time. Without a key the host refuses to listen anywhere but loopback (CloudSoupHost).
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CloudSoup.Control.Api;

public static class ApiKeyAuthentication
{
    public const string HeaderName = "x-api-key";

    /// <summary>Answers 401 (problem+json) to every request without the key.</summary>
    public static IApplicationBuilder UseApiKey(this IApplicationBuilder app, string key)
    {
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        return app.Use(async (HttpContext context, RequestDelegate next) =>
        {
            string? presented = Presented(context.Request);
            if (presented != null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), expected))
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"cloudsoup\"";
            await Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "unauthorized",
                detail: presented is null
                    ? $"this API needs a key: send it as the {HeaderName} header or as Authorization: Bearer KEY (cloudsoup submit/status: --api-key or CLOUDSOUP_API_KEY)"
                    : "the API key is not valid").ExecuteAsync(context).ConfigureAwait(false);
        });
    }

    private static string? Presented(HttpRequest request)
    {
        if (request.Headers.TryGetValue(HeaderName, out var key) && key.Count == 1 && !string.IsNullOrEmpty(key[0])) return key[0];
        string? auth = request.Headers.Authorization;
        return auth != null && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && auth.Length > 7 ? auth[7..].Trim() : null;
    }
}
