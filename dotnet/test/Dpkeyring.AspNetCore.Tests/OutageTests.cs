using System.Runtime.Versioning;
using Dpkeyring.Testing;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>Starting without the server: the last-known-good copy, and a clear failure without it.</summary>
public sealed class OutageTests(ITestOutputHelper output) : RealServerTest(output)
{
    [Fact]
    public async Task NodeStoppedWhileASwappedRingWarmsUp_StillKeepsThatRingAsItsLastKnownGoodCopy()
    {
        var cache = Path.Combine(Server.WorkDirectory, "lkg");
        HoldingKeyRingProvider? keyRings = null;
        var node = await TestNode.StartAsync(Server, o => o.CacheDirectory = cache, services => HoldingKeyRingProvider.Install(services, p => keyRings = p));
        node.ProtectingKeyId();
        keyRings!.Hold();

        // An emergency rotation is swapped in; ASP.NET Core keeps its old key ring (held here),
        // so the node waits for the rebuild, and the application stops meanwhile.
        var newKey = (await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!;
        await Eventually.UntilAsync(() => keyRings.CallsWhileHeld > 5, "the node waits for ASP.NET Core's new key ring");
        await node.DisposeAsync();

        // A restart while the server is down must not bring the leaked key back as the default.
        Assert.Contains(newKey, await File.ReadAllTextAsync(Path.Combine(cache, "default.xml")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NodeRestartedWhileServerIsDown_StartsFromLastKnownGoodCopy_AndSaysSo()
    {
        var cache = Path.Combine(Server.WorkDirectory, "lkg");
        Guid key;
        string payload;
        await using (var first = await TestNode.StartAsync(Server, o => o.CacheDirectory = cache))
        {
            key = first.ProtectingKeyId();
            payload = first.Protect("before the restart");
        }

        var file = Path.Combine(cache, "default.xml");
        Assert.True(File.Exists(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(cache));
        }

        await Server.StopAsync();
        await using var second = await TestNode.StartAsync(Server, o => { o.CacheDirectory = cache; o.StartupTimeout = TimeSpan.FromSeconds(2); });

        Assert.Equal(key, second.ProtectingKeyId());
        Assert.Equal("before the restart", second.Unprotect(payload));
        var warning = Assert.Single(second.Logs.Of("Dpkeyring.AspNetCore"), l => l.EventId == 2);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(file, warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoServerAndNoCopy_StartFails_WithAMessageThatSaysWhy_AndNoKeyIsMade()
    {
        await Server.StopAsync();
        var cache = Path.Combine(Server.WorkDirectory, "empty-cache");
        await using var node = TestNode.Create(Server, o => { o.CacheDirectory = cache; o.StartupTimeout = TimeSpan.FromSeconds(2); });

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());

        Assert.Contains("no key ring to start with", failure.Message, StringComparison.Ordinal);
        Assert.Contains(Server.Url, failure.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(cache, "default.xml"), failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Server.NodeToken, failure.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(cache) && Directory.EnumerateFileSystemEntries(cache).Any());
    }

    [Fact]
    public async Task NoHost_FirstProtectLoadsTheRing_AndWithoutServerOrCopyItThrowsTheSameMessage()
    {
        await using var node = TestNode.Create(Server);
        Assert.Equal(await Server.DefaultKeyIdAsync(), node.ProtectingKeyId());

        await Server.StopAsync();
        await using var orphan = TestNode.Create(Server, o => o.StartupTimeout = TimeSpan.FromSeconds(2));
        var failure = Assert.ThrowsAny<Exception>(() => orphan.Protect("x"));
        Assert.Contains("no key ring to start with", failure.ToString(), StringComparison.Ordinal);
    }

    [UnixFact]
    [UnsupportedOSPlatform("windows")]
    public async Task PlantedCopyOthersCanWrite_IsRefused_AndTheNodeDoesNotStartOnIt()
    {
        var cache = Path.Combine(Server.WorkDirectory, "lkg");
        await using (await TestNode.StartAsync(Server, o => o.CacheDirectory = cache))
        {
        }

        var file = Path.Combine(cache, "default.xml");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        await Server.StopAsync();
        await using var node = TestNode.Create(Server, o => { o.CacheDirectory = cache; o.StartupTimeout = TimeSpan.FromSeconds(2); });

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());
        Assert.Contains("other users", failure.Message, StringComparison.Ordinal);
    }

    [UnixTheory]
    [UnsupportedOSPlatform("windows")]
    [InlineData("folder others can write")]
    [InlineData("symbolic link")]
    public async Task PlantedCopy_InAFolderOthersCanWrite_OrBehindASymlink_IsRefused(string how)
    {
        var cache = Path.Combine(Server.WorkDirectory, "lkg");
        await using (await TestNode.StartAsync(Server, o => o.CacheDirectory = cache))
        {
        }

        var file = Path.Combine(cache, "default.xml");
        string expected;
        if (how == "symbolic link")
        {
            var elsewhere = Path.Combine(Server.WorkDirectory, "elsewhere.xml");
            File.Move(file, elsewhere);
            File.CreateSymbolicLink(file, elsewhere);
            expected = "is a symbolic link";
        }
        else
        {
            File.SetUnixFileMode(cache, (UnixFileMode)0x1FF); // 0777
            expected = "can be written by other users";
        }

        await Server.StopAsync();
        await using var node = TestNode.Create(Server, o => { o.CacheDirectory = cache; o.StartupTimeout = TimeSpan.FromSeconds(2); });

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());
        Assert.Contains(expected, failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DamagedCopy_IsRefused_WithTheReason()
    {
        var cache = Path.Combine(Server.WorkDirectory, "lkg");
        await using (await TestNode.StartAsync(Server, o => o.CacheDirectory = cache))
        {
        }

        var file = Path.Combine(cache, "default.xml");
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        await Server.StopAsync();
        await using var node = TestNode.Create(Server, o => { o.CacheDirectory = cache; o.StartupTimeout = TimeSpan.FromSeconds(2); });

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());
        Assert.Contains("is damaged", failure.Message, StringComparison.Ordinal);
    }
}
