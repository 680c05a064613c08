using System.Security.Cryptography;
using Dpkeyring.Testing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;
using Xunit.Abstractions;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>A node against the real server: what an operator and a user of the site see.</summary>
public sealed class NodeTests(ITestOutputHelper output) : RealServerTest(output)
{
    [Fact]
    public async Task Node_ProtectsWithTheServersDefaultKey()
    {
        await using var node = await TestNode.StartAsync(Server);

        Assert.Equal(await Server.DefaultKeyIdAsync(), node.ProtectingKeyId());
    }

    [Fact]
    public async Task PayloadsCrossBothWays_NodeToDpkeyringUnprotect_AndPlainAspNetCoreToNode()
    {
        await using var node = await TestNode.StartAsync(Server, application: "my-site");

        // The node's payload opens with the server's own tool, with the application name first.
        var payload = node.Protect("hello from the node", "orders");
        Assert.Equal("hello from the node", await Server.UnprotectAsync(payload, "my-site", "orders"));

        // A plain ASP.NET Core Data Protection reading the server's key folder (no dpkeyring
        // package) and the node read each other's payloads.
        var plain = DataProtectionProvider.Create(new DirectoryInfo(Path.Combine(Server.DataDirectory, "default")), b => b.SetApplicationName("my-site").DisableAutomaticKeyGeneration())
            .CreateProtector("orders");
        Assert.Equal("hello from plain ASP.NET Core", node.Unprotect(plain.Protect("hello from plain ASP.NET Core"), "orders"));
        Assert.Equal("hello from the node", plain.Unprotect(payload));
    }

    [Fact]
    public async Task EmergencyRotation_ReachesRunningNode_AndRevokedPayloadIsRefused()
    {
        await using var node = await TestNode.StartAsync(Server);
        var oldPayload = node.Protect("made with the leaked key");
        Assert.Equal("made with the leaked key", node.Unprotect(oldPayload));

        var rotation = await Server.RotateAsync(immediate: true, revokePrevious: true, reason: "key leaked");
        var newKey = Guid.Parse(rotation.GetProperty("key_id").GetString()!);

        await Eventually.UntilAsync(() => node.ProtectingKeyId() == newKey, "the running node protects with the emergency key");

        // From the moment it protects with the new key, the revoked key's payloads are refused.
        var refused = Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(oldPayload));
        Assert.Contains("revoked", refused.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("fresh", node.Unprotect(node.Protect("fresh")));
    }

    [Fact]
    public async Task EmergencyRotation_FirstUseAfterTheChange_AlreadyRefusesTheRevokedKey()
    {
        await using var node = await TestNode.StartAsync(Server);
        var oldPayload = node.Protect("made with the leaked key");
        var oldKey = TestNode.KeyIdOf(oldPayload);

        await Server.RotateAsync(immediate: true, revokePrevious: true, reason: "key leaked");

        // Wait on the package's own signal (the ring version it holds), never touching Data
        // Protection, so the next call below is the very first use after the change: ASP.NET Core
        // 9+ would answer it from its old key ring unless the package rebuilt it first.
        long version = (await Server.StatusAsync()).GetProperty("version").GetInt64();
        await Eventually.UntilAsync(() => node.Logs.Of("Dpkeyring.AspNetCore").Any(l => l.EventId == 1 && l.Message.Contains($"version {version} ", StringComparison.Ordinal)), "the node loaded the new ring");

        Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(oldPayload));
        Assert.NotEqual(oldKey, node.ProtectingKeyId());
    }

    [Fact]
    public async Task TwoNodes_AgreeOnKeys_BeforeAndAfterARotation()
    {
        await using var a = await TestNode.StartAsync(Server);
        await using var b = await TestNode.StartAsync(Server);

        Assert.Equal("from a", b.Unprotect(a.Protect("from a")));
        Assert.Equal(a.ProtectingKeyId(), b.ProtectingKeyId());

        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true)).GetProperty("key_id").GetString()!);
        await Eventually.UntilAsync(() => a.ProtectingKeyId() == newKey && b.ProtectingKeyId() == newKey, "both nodes protect with the new key");
        Assert.Equal("from b", a.Unprotect(b.Protect("from b")));
    }

    [Fact]
    public async Task ServerDown_NodeKeepsWorking_HealthSaysDegraded_ThenHealthyWhenItReturns()
    {
        await using var node = await TestNode.StartAsync(Server, o => o.PollWait = TimeSpan.FromSeconds(1));
        var payload = node.Protect("before the outage");
        Assert.Equal(HealthStatus.Healthy, (await node.HealthAsync()).Status);

        await Server.StopAsync();

        Assert.Equal("before the outage", node.Unprotect(payload));
        Assert.Equal("during", node.Unprotect(node.Protect("during")));
        await Eventually.UntilAsync(async () => (await node.HealthAsync()).Status == HealthStatus.Degraded, "health is Degraded after two poll waits without the server");
        var degraded = await node.HealthAsync();
        Assert.Contains("has not answered", degraded.Description, StringComparison.Ordinal);
        Assert.Equal("before the outage", node.Unprotect(payload));

        await Server.RestartAsync();
        await Eventually.UntilAsync(async () => (await node.HealthAsync()).Status == HealthStatus.Healthy, "health is Healthy once the server answers again", TimeSpan.FromSeconds(40));

        // The recovery is logged just after the state changes, on the node's own thread.
        await Eventually.UntilAsync(() => node.Logs.Of("Dpkeyring.AspNetCore").Any(l => l.EventId == 5), "the node logged that the server answers again");
    }

    [Fact]
    public async Task NodeShowsInTheServersStatus_WithTheVersionItHolds()
    {
        await using var node = await TestNode.StartAsync(Server, o => o.NodeId = "web-7");
        long version = (await Server.StatusAsync()).GetProperty("version").GetInt64();

        var nodes = (await Server.StatusAsync()).GetProperty("nodes").EnumerateArray().ToList();
        var entry = Assert.Single(nodes, n => n.GetProperty("node").GetString() == "web-7");
        Assert.Equal(version, entry.GetProperty("version").GetInt64());
        Assert.True(entry.GetProperty("current").GetBoolean());
    }

    [Fact]
    public async Task NodeNeverWrites_StoreElementAndCreateKeyAreRefusedWithTheReason()
    {
        await using var node = await TestNode.StartAsync(Server);
        var keyManager = (Microsoft.AspNetCore.DataProtection.KeyManagement.IKeyManager)node.Services.GetService(typeof(Microsoft.AspNetCore.DataProtection.KeyManagement.IKeyManager))!;

        var create = Assert.Throws<InvalidOperationException>(() => keyManager.CreateNewKey(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(90)));
        Assert.Contains("only writer", create.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => keyManager.RevokeAllKeys(DateTimeOffset.UtcNow, "no"));

        var options = (Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>)node.Services.GetService(typeof(Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>))!;
        Assert.False(options.Value.AutoGenerateKeys);
        var store = Assert.Throws<InvalidOperationException>(() => options.Value.XmlRepository!.StoreElement(new System.Xml.Linq.XElement("key"), "k"));
        Assert.Contains("only writer", store.Message, StringComparison.Ordinal);
        Assert.Single(Directory.EnumerateFiles(Path.Combine(Server.DataDirectory, "default"), "key-*.xml"));
    }
}
