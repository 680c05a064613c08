using System.Security.Cryptography;
using Dpkeyring.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;
using Xunit.Abstractions;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary><c>UseDpkeyringAgentFolder</c>: a node that keeps the agent follows its folder at once.</summary>
public sealed class AgentFolderTests(ITestOutputHelper output) : RealServerTest(output)
{
    [Fact]
    public async Task AgentFolder_EmergencyRotationWrittenByTheAgent_ReachesTheRunningNode_AndRevokedPayloadIsRefused()
    {
        var folder = Path.Combine(Server.WorkDirectory, "keys");
        await using var agent = await Server.StartAgentAsync(folder, Server.WriteTokenFile(Server.NodeToken));
        await using var node = TestNode.Create(new DpkeyringOptions(), dataProtection: b => b.UseDpkeyringAgentFolder(folder));
        await node.Host.StartAsync();
        Assert.Equal(await Server.DefaultKeyIdAsync(), node.ProtectingKeyId());
        var oldPayload = node.Protect("made with the leaked key");
        var filesBefore = Directory.GetFiles(folder).Length;

        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!);

        await Eventually.UntilAsync(() => node.ProtectingKeyId() == newKey, "the node protects with the key the agent wrote", TimeSpan.FromSeconds(5));
        Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(oldPayload));
        Assert.Equal(HealthStatus.Healthy, (await node.HealthAsync()).Status);
        Assert.True(Directory.GetFiles(folder).Length > filesBefore);
    }

    [Fact]
    public async Task AgentFolder_AForeignFileThatIsNotXml_KeepsTheGoodRing_AndHealthSaysDegraded()
    {
        var folder = Path.Combine(Server.WorkDirectory, "keys");
        await using var agent = await Server.StartAgentAsync(folder, Server.WriteTokenFile(Server.NodeToken));
        await using var node = TestNode.Create(new DpkeyringOptions(), dataProtection: b => b.UseDpkeyringAgentFolder(folder));
        await node.Host.StartAsync();
        var key = node.ProtectingKeyId();

        await File.WriteAllTextAsync(Path.Combine(folder, "key-planted.xml"), "<key id=");

        await Eventually.UntilAsync(async () => (await node.HealthAsync()).Status == HealthStatus.Degraded, "health shows the broken file");
        Assert.Contains("key-planted.xml", (await node.HealthAsync()).Description, StringComparison.Ordinal);
        Assert.Equal(key, node.ProtectingKeyId());
    }

    [Fact]
    public async Task AgentFolder_MissingAtStart_StartFails_SayingToRunTheAgentFirst()
    {
        var folder = Path.Combine(Server.WorkDirectory, "no-such-folder");
        await using var node = TestNode.Create(new DpkeyringOptions(), dataProtection: b => b.UseDpkeyringAgentFolder(folder));

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());

        Assert.Contains("dpkeyring agent --once", failure.Message, StringComparison.Ordinal);
        Assert.Contains(folder, failure.Message, StringComparison.Ordinal);
    }
}
