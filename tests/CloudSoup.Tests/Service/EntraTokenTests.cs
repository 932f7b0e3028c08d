// Entra ID bearer tokens at the standalone host (docs/security.md; Control/Api/ApiAuthentication.cs), through the real
// host on Kestrel and Azurite, with a local OpenID Connect provider standing in for the tenant (Support/
// LocalIdentityProvider.cs): the host fetches its metadata and keys over HTTP and validates signature, issuer,
// audience, lifetime and the app role with ASP.NET Core's JwtBearer handler. Bound to 0.0.0.0, reached via 127.0.0.1.
using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CloudSoup.Cli.Commands;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class EntraTokenTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private const string Audience = "api://cloudsoup-test";
    private const string Role = "CloudSoup.Merge";

    private async Task<(CloudSoupHost Host, HttpClient Http, CloudSoupOptions Options)> StartAsync(LocalIdentityProvider idp, string? role = null, string? apiKey = null)
    {
        var options = azurite.NewOptions();
        options.EntraAuthority = idp.Authority;
        options.EntraAudience = Audience;
        options.EntraRequiredRole = role;
        options.ApiKey = apiKey;
        var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Address = IPAddress.Any, RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, None);
        return (host, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.Url.Port}/") }, options);
    }

    private static HttpRequestMessage Post(string recipe, string? token = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "api/merges") { Content = new StringContent(recipe, Encoding.UTF8, "application/yaml") };
        if (token != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static async Task<string> DetailAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString()!;
    }

    [Fact]
    public async Task With_only_Entra_configured_the_host_serves_every_address_and_takes_a_valid_token_and_nothing_else()
    {
        await using var idp = await LocalIdentityProvider.StartAsync();
        var (host, http, options) = await StartAsync(idp);
        await using var _ = host;
        using var __ = http;
        string recipe = await host.TwoModelRecipeAsync(options, "entra", 61);

        var none = await http.SendAsync(Post(recipe));
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Contains("Entra ID access token", await DetailAsync(none));

        string good = idp.Token(Audience);
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(Post(recipe, good))).StatusCode);
        var list = new HttpRequestMessage(HttpMethod.Get, "api/merges");
        list.Headers.Authorization = new AuthenticationHeaderValue("Bearer", good);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(list)).StatusCode);

        // Each way a token can be wrong, refused with the reason and without echoing the token.
        var cases = new (string Token, string Reason)[]
        {
            (idp.Token(Audience, expiresIn: TimeSpan.FromMinutes(-10)), "expired"),
            (idp.Token("api://some-other-api"), "another audience"),
            (idp.Token(Audience, issuer: "https://login.microsoftonline.com/another-tenant/v2.0"), "another issuer"),
            (idp.Token(Audience, signWith: LocalIdentityProvider.NewKey("idp-key-1")), "signature does not verify"),
            (idp.Token(Audience, signWith: LocalIdentityProvider.NewKey("attacker-key")), "signature does not verify"),
            (good[..^4] + "AAAA", "signature does not verify"),
            ("not.a.jwt", "not a well-formed JWT"),
        };
        foreach (var (token, reason) in cases)
        {
            var refused = await http.SendAsync(Post(recipe, token));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            string detail = await DetailAsync(refused);
            Assert.Contains(reason, detail);
            Assert.DoesNotContain(token, detail);
            Assert.Equal("Bearer realm=\"cloudsoup\"", refused.Headers.WwwAuthenticate.ToString());
        }
    }

    [Fact]
    public async Task A_required_app_role_turns_a_valid_token_without_it_into_403()
    {
        await using var idp = await LocalIdentityProvider.StartAsync();
        var (host, http, options) = await StartAsync(idp, role: Role);
        await using var _ = host;
        using var __ = http;
        string recipe = await host.TwoModelRecipeAsync(options, "entra", 61);

        var noRole = await http.SendAsync(Post(recipe, idp.Token(Audience, roles: ["CloudSoup.Read"])));
        Assert.Equal(HttpStatusCode.Forbidden, noRole.StatusCode);
        Assert.Contains($"app role '{Role}'", await DetailAsync(noRole));
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(Post(recipe, idp.Token(Audience)))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(Post(recipe, idp.Token(Audience, roles: ["CloudSoup.Read", Role])))).StatusCode);
    }

    [Fact]
    public async Task With_a_key_and_Entra_both_credentials_work_and_the_cli_sends_a_token_as_a_bearer()
    {
        const string Key = "entra-and-key-0123456789";
        await using var idp = await LocalIdentityProvider.StartAsync();
        var (host, http, options) = await StartAsync(idp, apiKey: Key);
        await using var _ = host;
        using var __ = http;
        using var dir = new TempDir();
        string recipe = await host.TwoModelRecipeAsync(options, "entra", 61);
        File.WriteAllText(dir["r.yaml"], recipe);

        var withKey = Post(recipe);
        withKey.Headers.Add("x-api-key", Key);
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(withKey)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Post(recipe, idp.Token(Audience)))).StatusCode);   // the same recipe: the job it made
        var wrongKey = Post(recipe);
        wrongKey.Headers.Add("x-api-key", "wrong");
        var refused = await http.SendAsync(wrongKey);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("--api-token", await DetailAsync(refused));

        string api = http.BaseAddress!.ToString();
        var root = new RootCommand { SubmitCommand.Create(), StatusCommand.Create() };
        Assert.Equal(0, await root.Parse(["submit", dir["r.yaml"], "--api", api, "--api-token", idp.Token(Audience)]).InvokeAsync());
        Assert.Equal(0, await root.Parse(["status", "--api", api, "--api-token", idp.Token(Audience)]).InvokeAsync());
        Assert.Equal(2, await root.Parse(["status", "--api", api, "--api-token", idp.Token("api://some-other-api")]).InvokeAsync());
    }

    [Theory]
    [InlineData("http://login.example.com/tenant/v2.0", "api://x", "must use https")]
    [InlineData("not a url", "api://x", "must be an absolute https URL")]
    [InlineData("https://login.microsoftonline.com/tenant/v2.0", " ", "CloudSoup__EntraAudience is required")]
    public async Task A_misconfigured_authority_or_audience_stops_the_host_with_what_to_set(string authority, string audience, string message)
    {
        var options = azurite.NewOptions();
        options.EntraAuthority = authority;
        options.EntraAudience = audience;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Address = IPAddress.Any, RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, None));
        Assert.Contains(message, e.Message);
    }
}
