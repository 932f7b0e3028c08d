// The standalone host's credentials (docs/security.md). With an API key or Entra ID configured, every request must
// carry one of them or it is answered 401 (problem+json) before any handler runs:
//   - the API key, as "x-api-key: KEY" or "Authorization: Bearer KEY". Both sides are hashed with SHA-256 and the
//     hashes compared in constant time, so neither the key's content nor its length shows in the response time;
//   - an Entra ID access token, "Authorization: Bearer JWT", validated by ASP.NET Core's JwtBearer handler against the
//     configured authority's OpenID Connect metadata (signing keys, issuer) and audience, with its lifetime
//     (https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens). With a required app role the
//     token's "roles" claim must hold it, else 403
//     (https://learn.microsoft.com/entra/identity-platform/howto-add-app-roles-in-apps).
// A refusal says why in a few words (expired, another audience, signature) and never echoes the token.
// Without any credential the host refuses to listen anywhere but loopback (CloudSoupHost).
using System.Security.Cryptography;
using System.Text;
using CloudSoup.Control.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace CloudSoup.Control.Api;

public static class ApiAuthentication
{
    public const string ApiKeyHeader = "x-api-key";

    /// <summary>The claim Entra ID puts a client's app roles in (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference).</summary>
    public const string RolesClaim = "roles";

    /// <summary>True when the options name any credential the host must require.</summary>
    public static bool IsConfigured(CloudSoupOptions options) => ApiKey(options) != null || EntraEnabled(options);

    private static string? ApiKey(CloudSoupOptions options) => string.IsNullOrWhiteSpace(options.ApiKey) ? null : options.ApiKey.Trim();

    private static bool EntraEnabled(CloudSoupOptions options) => !string.IsNullOrWhiteSpace(options.EntraAuthority);

    /// <summary>
    /// Registers the JwtBearer handler when an Entra authority is configured. The authority must be https, except on
    /// loopback (a development identity provider); the audience is required, since a token for any other API of the
    /// same tenant would otherwise pass.
    /// </summary>
    public static void AddApiAuthentication(this IServiceCollection services, CloudSoupOptions options)
    {
        if (!EntraEnabled(options)) return;
        if (!Uri.TryCreate(options.EntraAuthority!.Trim(), UriKind.Absolute, out var authority) || authority.Scheme is not ("https" or "http"))
            throw new InvalidOperationException("CloudSoup__EntraAuthority must be an absolute https URL such as https://login.microsoftonline.com/TENANT-ID/v2.0");
        bool loopback = authority.IsLoopback;
        if (authority.Scheme == "http" && !loopback)
            throw new InvalidOperationException("CloudSoup__EntraAuthority must use https (http is allowed on loopback only)");
        var audiences = (options.EntraAudience ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (audiences.Length == 0)
            throw new InvalidOperationException("CloudSoup__EntraAudience is required with CloudSoup__EntraAuthority: the API's application ID URI or client id (comma-separated for several)");
        services.AddAuthentication().AddJwtBearer(JwtBearerDefaults.AuthenticationScheme, o =>
        {
            o.Authority = authority.ToString().TrimEnd('/');
            o.RequireHttpsMetadata = !loopback;
            o.MapInboundClaims = false;
            o.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudiences = audiences,
                ValidateIssuer = true,
                ValidateAudience = true,
                ValidateLifetime = true,
                ValidateIssuerSigningKey = true,
                RequireSignedTokens = true,
                RequireExpirationTime = true,
                ClockSkew = TimeSpan.FromMinutes(2),
            };
        });
    }

    /// <summary>Answers 401/403 (problem+json) to every request without a valid credential.</summary>
    public static IApplicationBuilder UseApiAuthentication(this IApplicationBuilder app, CloudSoupOptions options)
    {
        string? key = ApiKey(options);
        byte[]? expected = key is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(key));
        bool entra = EntraEnabled(options);
        string? role = string.IsNullOrWhiteSpace(options.EntraRequiredRole) ? null : options.EntraRequiredRole.Trim();
        return app.Use(async (HttpContext context, RequestDelegate next) =>
        {
            string? presented = Presented(context.Request);
            if (expected != null && presented != null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), expected))
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            string detail;
            if (entra && BearerToken(context.Request) is { } token && LooksLikeJwt(token))
            {
                var result = await context.AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme).ConfigureAwait(false);
                if (result.Succeeded)
                {
                    if (role is null || result.Principal.FindAll(RolesClaim).Any(c => c.Value == role))
                    {
                        context.User = result.Principal;
                        await next(context).ConfigureAwait(false);
                        return;
                    }
                    await Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "forbidden",
                        detail: $"the token is valid but does not carry the app role '{role}'; assign the role to the caller in Entra ID")
                        .ExecuteAsync(context).ConfigureAwait(false);
                    return;
                }
                detail = $"the bearer token is not valid: {Reason(result.Failure)}";
            }
            else detail = presented is null ? $"this API needs a credential: {Accepted(expected != null, entra)}" : $"the credential is not valid; {Accepted(expected != null, entra)}";
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"cloudsoup\"";
            await Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "unauthorized", detail: detail)
                .ExecuteAsync(context).ConfigureAwait(false);
        });
    }

    private static string Accepted(bool key, bool entra) => (key, entra) switch
    {
        (true, true) => $"send the API key as the {ApiKeyHeader} header, or an Entra ID access token as Authorization: Bearer TOKEN (cloudsoup: --api-key or --api-token)",
        (true, false) => $"send it as the {ApiKeyHeader} header or as Authorization: Bearer KEY (cloudsoup submit/status/download: --api-key or CLOUDSOUP_API_KEY)",
        _ => "send an Entra ID access token for this API as Authorization: Bearer TOKEN (cloudsoup: --api-token or CLOUDSOUP_API_TOKEN)",
    };

    /// <summary>Why a token was refused, in words, from the validator's exception type (its message may quote the token's claims).</summary>
    private static string Reason(Exception? failure) => failure switch
    {
        SecurityTokenExpiredException => "it has expired; get a new one",
        SecurityTokenNotYetValidException => "it is not valid yet (check the clock)",
        SecurityTokenInvalidAudienceException => "it was issued for another audience (request it for this API's application ID URI)",
        SecurityTokenInvalidIssuerException => "it was issued by another issuer (tenant)",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "its signature does not verify against the authority's keys",
        SecurityTokenNoExpirationException => "it has no expiry",
        SecurityTokenMalformedException or ArgumentException => "it is not a well-formed JWT",
        null => "it was not accepted",
        _ when failure.GetType().Name.Contains("Configuration", StringComparison.Ordinal) || failure is InvalidOperationException or HttpRequestException
            => "the authority's signing keys could not be read; try again later",
        _ => "it was not accepted",
    };

    private static string? Presented(HttpRequest request)
    {
        if (request.Headers.TryGetValue(ApiKeyHeader, out var key) && key.Count == 1 && !string.IsNullOrEmpty(key[0])) return key[0];
        return BearerToken(request);
    }

    private static string? BearerToken(HttpRequest request)
    {
        string? auth = request.Headers.Authorization;
        return auth != null && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && auth.Length > 7 ? auth[7..].Trim() : null;
    }

    /// <summary>A compact JWS: three base64url parts (https://www.rfc-editor.org/rfc/rfc7515#section-7.1).</summary>
    public static bool LooksLikeJwt(string token) => token.Length < 16_384 && token.Count(c => c == '.') == 2;
}
