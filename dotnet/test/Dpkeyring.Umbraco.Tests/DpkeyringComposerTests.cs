using Dpkeyring.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;

namespace Dpkeyring.Umbraco.Tests;

/// <summary>
/// Installing the package and adding the Dpkeyring section, checked end to end: Umbraco's own
/// builder and composer discovery, the site's real service provider, and the real server.
/// </summary>
public sealed class DpkeyringComposerTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly string _cacheDirectory = Directory.CreateTempSubdirectory("dpkeyring-umbraco-cache-").FullName;

    public void Dispose() => Directory.Delete(_cacheDirectory, recursive: true);

    private object Appsettings(string? applicationName = null) => new
    {
        Dpkeyring = new Dictionary<string, string>
        {
            ["Url"] = fixture.Server.Url,
            ["TokenFile"] = fixture.TokenFile,
            ["CacheDirectory"] = _cacheDirectory,
        }
        .Concat(applicationName is null ? [] : [KeyValuePair.Create("ApplicationName", applicationName)])
        .ToDictionary(),
    };

    [Fact]
    public async Task SiteWithDpkeyringUrl_ProtectsWithTheServersDefaultKey_AndDpkeyringUnprotectOpensIt()
    {
        await using UmbracoSite site = UmbracoSite.Compose(Appsettings());
        WebApplication app = site.Build();

        IDataProtector protector = app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Umbraco.Test", "v1");
        string payload = protector.Protect("signed in on every node");

        Assert.Equal(await fixture.Server.DefaultKeyIdAsync(), KeyIdOf(payload));

        // Without Dpkeyring:ApplicationName the site keeps the name it always had: its content-root
        // path as ASP.NET Core makes it, with a trailing separator ("/app/" for a log line
        // "Content root path: /app"). The README tells an existing site to use exactly that.
        string discriminator = app.Services.GetRequiredService<IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator!;
        Assert.Equal(ContentRootName(site), discriminator);
        Assert.Equal("signed in on every node", await fixture.Server.UnprotectAsync(payload, ContentRootName(site), "Umbraco.Test", "v1"));
    }

    [Fact]
    public async Task ApplicationNameInAppsettings_BecomesTheFirstPurpose()
    {
        await using UmbracoSite site = UmbracoSite.Compose(Appsettings(applicationName: "MyUmbracoSite"));
        WebApplication app = site.Build();

        string payload = app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Umbraco.Test").Protect("same name on CM and CD");

        Assert.Equal("same name on CM and CD", await fixture.Server.UnprotectAsync(payload, "MyUmbracoSite", "Umbraco.Test"));
        InvalidOperationException wrongName = await Assert.ThrowsAsync<InvalidOperationException>(
            () => fixture.Server.UnprotectAsync(payload, ContentRootName(site), "Umbraco.Test"));
        Assert.Contains("wrong purposes or application name", wrongName.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SiteWithDpkeyringUrl_ShowsTheDpkeyringHealthCheck()
    {
        await using UmbracoSite site = UmbracoSite.Compose(Appsettings());
        WebApplication app = site.Build();
        app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Umbraco.Test").Protect("load the ring");

        HealthReport report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.True(report.Entries.TryGetValue("dpkeyring", out HealthReportEntry entry), "no health check named dpkeyring");
        Assert.NotEqual(HealthStatus.Unhealthy, entry.Status);
    }

    [Fact]
    public async Task SiteWithoutUrl_KeepsItsServicesExactlyAsTheyWere_AndLogsOneLineSayingHowToTurnItOn()
    {
        await using UmbracoSite site = UmbracoSite.Compose(new
        {
            // A half-done setup: everything but the Url. It must still change nothing.
            Dpkeyring = new { TokenFile = fixture.TokenFile, ApplicationName = "MyUmbracoSite" },
        });

        Assert.Equal(site.BeforeComposers, site.AfterComposers);
        FakeLogRecord line = Assert.Single(site.PackageLogLines);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Information, line.Level);
        Assert.Contains("Dpkeyring:Url", line.Message, StringComparison.Ordinal);

        WebApplication app = site.Build();
        Assert.Empty(app.Services.GetRequiredService<IOptions<DpkeyringOptions>>().Value.Url ?? "");
        Assert.Null(app.Services.GetRequiredService<IOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>>().Value.XmlRepository);
    }

    [Fact]
    public async Task WrongSettingInAppsettings_StopsTheStart_NamingTheSetting()
    {
        await using UmbracoSite site = UmbracoSite.Compose(new
        {
            // Plain http to a host that is not loopback, without AllowInsecureHttp.
            Dpkeyring = new { Url = "http://keys.example.test:8080", TokenFile = fixture.TokenFile, CacheDirectory = _cacheDirectory },
        });
        WebApplication app = site.Build();

        OptionsValidationException error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("Dpkeyring:Url is plain http://", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SiteThatSetUpDpkeyringInProgramCs_IsLeftAsItWas_AndStillReadsTheServersKey()
    {
        await using UmbracoSite site = UmbracoSite.Compose(
            Appsettings(applicationName: "FromAppsettings"),
            (services, configuration) => services.AddDataProtection()
                .PersistKeysToDpkeyring(configuration.GetSection("Dpkeyring"))
                .SetApplicationName("FromProgramCs"));

        Assert.Equal(site.BeforeComposers, site.AfterComposers);
        Assert.Contains("already set up", Assert.Single(site.PackageLogLines).Message, StringComparison.Ordinal);

        WebApplication app = site.Build();
        string payload = app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Umbraco.Test").Protect("one repository");
        Assert.Equal("one repository", await fixture.Server.UnprotectAsync(payload, "FromProgramCs", "Umbraco.Test"));
    }

    [Fact]
    public async Task SiteThatAlsoAddsTheDpkeyringHealthCheckInProgramCs_StillAnswersHealthRequests()
    {
        await using UmbracoSite site = UmbracoSite.Compose(
            Appsettings(),
            (services, _) => services.AddHealthChecks().AddDpkeyring());
        WebApplication app = site.Build();
        app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Umbraco.Test").Protect("load the ring");

        // Two checks named "dpkeyring" would make HealthCheckService throw here.
        HealthReport report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.Equal(["dpkeyring"], report.Entries.Keys);
    }

    [Fact]
    public async Task SiteThatWiresDpkeyringAfterTheComposers_StillHasOneFollowerAndOneHealthCheck()
    {
        await using UmbracoSite site = UmbracoSite.Compose(
            Appsettings(),
            afterComposers: (services, configuration) =>
            {
                services.AddDataProtection().PersistKeysToDpkeyring(configuration.GetSection("Dpkeyring"));
                services.AddHealthChecks().AddDpkeyring();
            });
        WebApplication app = site.Build();

        Assert.Single(app.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>(), s => s.GetType().Assembly == typeof(DpkeyringOptions).Assembly);
        string payload = app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Umbraco.Test").Protect("one follower");
        Assert.Equal("one follower", await fixture.Server.UnprotectAsync(payload, ContentRootName(site), "Umbraco.Test"));
        HealthReport report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        Assert.Equal(["dpkeyring"], report.Entries.Keys);
    }

    [Fact]
    public void ApplicationNameWithStraySpace_StopsTheStart_NamingTheSetting()
    {
        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => UmbracoSite.Compose(Appsettings(applicationName: "MyUmbracoSite ")));
        Assert.Contains("Dpkeyring:ApplicationName", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The application name ASP.NET Core derives from the content root: the path and a trailing separator.</summary>
    private static string ContentRootName(UmbracoSite site) =>
        Path.TrimEndingDirectorySeparator(site.App!.Environment.ContentRootPath) + Path.DirectorySeparatorChar;

    /// <summary>The key id a Data Protection payload names: bytes 4 to 20, after the magic header.</summary>
    private static Guid KeyIdOf(string payload)
    {
        byte[] bytes = WebEncoders.Base64UrlDecode(payload);
        Assert.Equal(new byte[] { 0x09, 0xF0, 0xC9, 0xF0 }, bytes[..4]);
        return new Guid(bytes.AsSpan(4, 16));
    }
}
