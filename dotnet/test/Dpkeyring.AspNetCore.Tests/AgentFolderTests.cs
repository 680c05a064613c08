using System.Runtime.Versioning;
using System.Security.Cryptography;
using Dpkeyring.Testing;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
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
        await using var node = TestNode.CreateForAgentFolder(Server, folder);
        await node.Host.StartAsync();
        Assert.Equal(await Server.DefaultKeyIdAsync(), node.ProtectingKeyId());
        var oldPayload = node.Protect("made with the leaked key");
        var filesBefore = Directory.GetFiles(folder).Length;

        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!);

        await Eventually.UntilAsync(() => node.ProtectingKeyId() == newKey, "the node protects with the key the agent wrote");
        Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(oldPayload));
        Assert.Equal(HealthStatus.Healthy, (await node.HealthAsync()).Status);
        Assert.True(Directory.GetFiles(folder).Length > filesBefore);
    }

    [Fact]
    public async Task AgentFolder_RotationHalfWritten_IsNotTaken_UntilTheAgentRecordsItsVersion()
    {
        // The agent's writes, one step at a time: a version's files first, then its state file
        // with the version. Here the test writes them, from the server's own store folder.
        var store = Path.Combine(Server.DataDirectory, "default");
        var folder = Path.Combine(Server.WorkDirectory, "keys");
        Directory.CreateDirectory(folder);
        CopyNewElements(store, folder);
        long first = (await Server.StatusAsync()).GetProperty("version").GetInt64();

        // The node starts before the agent has recorded a version, and learns it once recorded.
        await using var node = TestNode.CreateForAgentFolder(Server, folder);
        await node.Host.StartAsync();
        using var fetches = new MetricCollector<long>(node.Services.GetRequiredService<IMeterFactory>(), "Dpkeyring.AspNetCore", "dpkeyring.fetches");
        var leaked = node.Protect("made with the leaked key");
        var oldKey = node.ProtectingKeyId();
        WriteAgentState(folder, first);
        await Eventually.UntilAsync(() => Loaded(node, first), "the node took the version the agent recorded");

        // An emergency rotation, half written: its new key is in the folder; the revocation of
        // the leaked key and the new version are not, yet. The node reads the folder and waits.
        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!);
        long second = (await Server.StatusAsync()).GetProperty("version").GetInt64();
        long readsBefore = Unchanged(fetches);
        Place(Path.Combine(store, $"key-{newKey}.xml"), folder);
        await Eventually.UntilAsync(() => Unchanged(fetches) > readsBefore, "the node read the half-written folder");
        Assert.Equal(oldKey, node.ProtectingKeyId());
        Assert.Equal("made with the leaked key", node.Unprotect(leaked));

        // The rest of the version, and its record: now the node takes it whole.
        CopyNewElements(store, folder);
        WriteAgentState(folder, second);
        await Eventually.UntilAsync(() => Loaded(node, second), "the node took the whole new version");
        Assert.Equal(newKey, node.ProtectingKeyId());
        Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(leaked));
    }

    [UnixFact]
    [UnsupportedOSPlatform("windows")]
    public async Task AgentFolderRead_DuringWhichTheAgentRecordsAVersion_NeverLabelsHalfThatVersionsFilesWithIt()
    {
        // Fault injection (Linux): the state file is a FIFO, so reading it waits until the test
        // writes it: the agent recording the version at that very moment of the node's read.
        var store = Path.Combine(Server.DataDirectory, "default");
        var folder = Path.Combine(Server.WorkDirectory, "keys");
        Directory.CreateDirectory(folder);
        CopyNewElements(store, folder);
        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!);
        long second = (await Server.StatusAsync()).GetProperty("version").GetInt64();
        Place(Path.Combine(store, $"key-{newKey}.xml"), folder); // the new key; its revocation not yet
        var state = Path.Combine(folder, ".dpkeyring-agent.json");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", state))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        using var feed = new FolderRingFeed(folder, TimeSpan.FromMinutes(1), TimeProvider.System);
        var read = Task.Run(() => feed.FetchAsync(etag: null, wait: null, TimeSpan.FromSeconds(30), CancellationToken.None));
        await Task.Delay(500); // the read is under way

        // The agent finishes the version (its revocation), then records it.
        CopyNewElements(store, folder);
        await File.WriteAllTextAsync(state, $$"""{"ring": "default", "version": {{second}}}""");
        var snapshot = await read.WaitAsync(TimeSpan.FromSeconds(30));

        // The version's label never goes on files read before the version was whole (here: the
        // new key without the revocation of the leaked one).
        Assert.NotNull(snapshot);
        Assert.Equal(second, snapshot.Version);
        Assert.Contains(snapshot.Elements, e => e.Name.LocalName == "revocation");
    }

    [Fact]
    public async Task AgentFolder_AForeignFileThatIsNotXml_KeepsTheGoodRing_AndHealthSaysDegraded()
    {
        var folder = Path.Combine(Server.WorkDirectory, "keys");
        await using var agent = await Server.StartAgentAsync(folder, Server.WriteTokenFile(Server.NodeToken));
        await using var node = TestNode.CreateForAgentFolder(Server, folder);
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
        await using var node = TestNode.CreateForAgentFolder(Server, folder);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => node.Host.StartAsync());

        Assert.Contains("dpkeyring agent --once", failure.Message, StringComparison.Ordinal);
        Assert.Contains(folder, failure.Message, StringComparison.Ordinal);
    }

    private static bool Loaded(TestNode node, long version) =>
        node.Logs.Of("Dpkeyring.AspNetCore").Any(l => l.EventId == 1 && l.Message.Contains($"version {version} ", StringComparison.Ordinal));

    private static long Unchanged(MetricCollector<long> fetches) =>
        fetches.GetMeasurementSnapshot().Where(m => (string?)m.Tags["result"] == "unchanged").Sum(m => m.Value);

    /// <summary>Copies the store's key and revocation files that <paramref name="folder"/> lacks, as the agent writes them.</summary>
    private static void CopyNewElements(string store, string folder)
    {
        foreach (var file in Directory.EnumerateFiles(store, "*.xml").Where(f => Path.GetFileName(f).StartsWith("key-", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("revocation-", StringComparison.Ordinal)))
        {
            if (!File.Exists(Path.Combine(folder, Path.GetFileName(file))))
            {
                Place(file, folder);
            }
        }
    }

    /// <summary>Puts a copy of <paramref name="file"/> in <paramref name="folder"/> whole, as the agent does: written under a temporary name, then renamed.</summary>
    private static void Place(string file, string folder)
    {
        var temp = Path.Combine(folder, $".dpkeyring-{Guid.NewGuid():N}.tmp");
        File.Copy(file, temp);
        File.Move(temp, Path.Combine(folder, Path.GetFileName(file)));
    }

    /// <summary>Records <paramref name="version"/> in the folder's state file as the agent does: a new file renamed over it.</summary>
    private static void WriteAgentState(string folder, long version)
    {
        var temp = Path.Combine(folder, $".dpkeyring-{Guid.NewGuid():N}.tmp");
        File.WriteAllText(temp, $$"""{"ring": "default", "version": {{version}}}""" + "\n");
        File.Move(temp, Path.Combine(folder, ".dpkeyring-agent.json"), overwrite: true);
    }
}
