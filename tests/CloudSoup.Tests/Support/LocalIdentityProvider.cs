// A stand-in for an Entra ID tenant, for the API host's token tests: a Kestrel server on loopback that publishes
// OpenID Connect discovery metadata and a JSON Web Key Set (https://openid.net/specs/openid-connect-discovery-1_0.html),
// and mints RS256 access tokens with its key. The host under test fetches the metadata and keys over HTTP exactly as
// it would from login.microsoftonline.com; only the issuer differs.
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CloudSoup.Tests.Support;

public sealed class LocalIdentityProvider : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly RsaSecurityKey _key;

    private LocalIdentityProvider(WebApplication app, RsaSecurityKey key, string authority)
    {
        _app = app;
        _key = key;
        Authority = authority;
    }

    /// <summary>The authority URL (also the tokens' issuer), e.g. http://127.0.0.1:PORT/tenant/v2.0.</summary>
    public string Authority { get; }

    public static async Task<LocalIdentityProvider> StartAsync()
    {
        var key = NewKey("idp-key-1");
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        LocalIdentityProvider? self = null;
        app.MapGet("/tenant/v2.0/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = self!.Authority,
            ["jwks_uri"] = self.Authority + "/keys",
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        app.MapGet("/tenant/v2.0/keys", () =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(key.Rsa.ExportParameters(false)) { KeyId = key.KeyId });
            return Results.Json(new { keys = new[] { new { kty = jwk.Kty, use = "sig", kid = jwk.Kid, n = jwk.N, e = jwk.E, alg = "RS256" } } });
        });
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        self = new LocalIdentityProvider(app, key, address + "/tenant/v2.0");
        return self;
    }

    /// <summary>A fresh RSA signing key with <paramref name="kid"/> (another key signs tokens the host must refuse).</summary>
    public static RsaSecurityKey NewKey(string kid) => new(RSA.Create(2048)) { KeyId = kid };

    /// <summary>An access token for <paramref name="audience"/>; every part can be made wrong for the refusal tests.</summary>
    public string Token(string audience, string[]? roles = null, TimeSpan? expiresIn = null, string? issuer = null, RsaSecurityKey? signWith = null)
    {
        var now = DateTime.UtcNow;
        var expires = now + (expiresIn ?? TimeSpan.FromMinutes(30));
        var notBefore = expires < now ? expires - TimeSpan.FromHours(1) : now - TimeSpan.FromMinutes(1);
        var claims = new Dictionary<string, object> { ["sub"] = "caller-object-id", ["tid"] = "tenant" };
        if (roles != null) claims["roles"] = roles;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Authority,
            Audience = audience,
            IssuedAt = notBefore,
            NotBefore = notBefore,
            Expires = expires,
            Claims = claims,
            SigningCredentials = new SigningCredentials(signWith ?? _key, SecurityAlgorithms.RsaSha256),
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
