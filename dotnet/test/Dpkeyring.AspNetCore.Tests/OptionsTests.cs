using Dpkeyring.Testing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>Settings are checked when the host starts, with messages that name the setting and never show the token.</summary>
public sealed class OptionsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("dpkeyring-options-").FullName;

    public static TheoryData<string, string, string> BadSettings => new()
    {
        { "Url", "", "Dpkeyring:Url is not set" },
        { "Url", "keys.internal:8443", "Dpkeyring:Url is not an absolute http:// or https:// URL" },
        { "Url", "http://keys.internal:8080", "Dpkeyring:Url is plain http:// to keys.internal" },
        { "Url", "https://user:secret@keys.internal", "Dpkeyring:Url contains a user name or password" },
        { "Ring", "Default Ring", "Dpkeyring:Ring is 'Default Ring'" },
        { "NodeId", "web 1", "Dpkeyring:NodeId is 'web 1'" },
        { "PollWait", "00:00:00.5", "Dpkeyring:PollWait is 00:00:00.5000000" },
        { "CacheDirectory", "relative/cache", "Dpkeyring:CacheDirectory is 'relative/cache'; it must be an absolute path" },
        { "CaCertificateFile", "/no/such/ca.pem", "Dpkeyring:CaCertificateFile '/no/such/ca.pem' cannot be read" },
        { "TokenFile", "/no/such/token", "Dpkeyring:TokenFile '/no/such/token' cannot be read" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task BadSetting_StopsTheStart_WithAMessageNamingIt(string setting, string value, string expected)
    {
        var settings = Valid();
        settings[$"Dpkeyring:{setting}"] = value;
        if (setting == "CaCertificateFile")
        {
            settings["Dpkeyring:Url"] = "https://keys.internal:8443";
        }

        using var host = Build(settings);

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(expected, failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BothTokenAndTokenFile_AreRefused_AndTheTokenIsNotQuoted()
    {
        var settings = Valid();
        settings["Dpkeyring:Token"] = "dpk_supersecrettokenvalue";
        using var host = Build(settings);

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("both Dpkeyring:TokenFile and Dpkeyring:Token are set", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("supersecret", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenFileWithASecondLine_IsRefused_WithoutQuotingIt()
    {
        var settings = Valid();
        File.WriteAllText(settings["Dpkeyring:TokenFile"]!, "dpk_abc\nsecond-line-secret\n");
        using var host = Build(settings);

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("does not hold a token", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("second-line-secret", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PlainHttp_IsAllowed_ToLoopback_OrWithAllowInsecureHttp()
    {
        foreach (var (url, allow) in new[] { ("http://127.0.0.1:8080", false), ("http://localhost:8080", false), ("http://[::1]:8080", false), ("http://keys.internal:8080", true) })
        {
            var settings = Valid();
            settings["Dpkeyring:Url"] = url;
            settings["Dpkeyring:AllowInsecureHttp"] = allow ? "true" : "false";
            using var host = Build(settings);
            Assert.Equal(url, host.Services.GetRequiredService<IOptions<DpkeyringOptions>>().Value.Url);
        }
    }

    [Fact]
    public void Defaults_NodeIdIsTheMachineName_CacheIsPerApplicationOutsideTheContentRoot()
    {
        var settings = Valid();
        settings.Remove("Dpkeyring:CacheDirectory");
        using var host = Build(settings);
        var options = host.Services.GetRequiredService<IOptions<DpkeyringOptions>>().Value;

        Assert.Equal(DpkeyringOptionsDefaults.DefaultNodeId(Environment.MachineName), options.NodeId);
        Assert.Equal("default", options.Ring);
        Assert.Equal(TimeSpan.FromSeconds(60), options.PollWait);
        Assert.False(options.AllowInsecureHttp);
        Assert.NotNull(options.CacheDirectory);
        Assert.StartsWith(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), options.CacheDirectory, StringComparison.Ordinal);
        Assert.DoesNotContain(Directory.GetCurrentDirectory() + Path.DirectorySeparatorChar, options.CacheDirectory + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        Assert.Equal("web-1-a.b", DpkeyringOptionsDefaults.DefaultNodeId("web 1#a.b"));
    }

    [Fact]
    public void UsingBothSources_IsRefused()
    {
        var services = new ServiceCollection();
        services.AddDataProtection().PersistKeysToDpkeyring(o => { o.Url = "https://keys.internal"; o.Token = "dpk_x"; }).UseDpkeyringAgentFolder(_directory);
        using var provider = services.BuildServiceProvider();

        var failure = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<DpkeyringOptions>>().Value);
        Assert.Contains("not both", failure.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private Dictionary<string, string?> Valid()
    {
        var tokenFile = Path.Combine(_directory, "token");
        File.WriteAllText(tokenFile, "dpk_secretvalue\n");
        return new Dictionary<string, string?>
        {
            ["Dpkeyring:Url"] = "https://keys.internal:8443",
            ["Dpkeyring:TokenFile"] = tokenFile,
            ["Dpkeyring:CacheDirectory"] = Path.Combine(_directory, "cache"),
        };
    }

    private static Microsoft.Extensions.Hosting.IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new Microsoft.Extensions.Hosting.HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddDataProtection().PersistKeysToDpkeyring(builder.Configuration.GetSection("Dpkeyring"));
        return builder.Build();
    }
}
