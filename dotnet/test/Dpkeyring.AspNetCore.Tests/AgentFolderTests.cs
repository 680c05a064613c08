using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
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
    public async Task AgentFolder_NodeStartedBeforeTheAgentRecordedAVersion_LearnsIt_AndNeverTakesAnOlderFolderBack()
    {
        // The agent's writes, one step at a time (a version's files, then its state file with
        // the version), made here by the test from the server's own store folder.
        var (store, folder) = FolderWithTheServersElements();
        long first = (await Server.StatusAsync()).GetProperty("version").GetInt64();
        var backup = Directory.GetFiles(folder).Select(Path.GetFileName).ToList();

        // The node starts before the agent has recorded a version, and learns it once recorded.
        await using var node = TestNode.CreateForAgentFolder(Server, folder);
        await node.Host.StartAsync();
        var leaked = node.Protect("made with the leaked key");
        WriteAgentState(folder, first);
        await Eventually.UntilAsync(() => Loaded(node, first), "the node took the version the agent recorded");

        // An emergency rotation reaches the folder, and the node.
        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!);
        long second = (await Server.StatusAsync()).GetProperty("version").GetInt64();
        CopyNewElements(store, folder);
        WriteAgentState(folder, second);
        await Eventually.UntilAsync(() => Loaded(node, second), "the node took the new version");
        Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(leaked));

        // The folder is put back as it was before the rotation (a backup restored, a volume
        // snapshot): the node keeps the version it holds, and the leaked key stays refused.
        foreach (var file in Directory.GetFiles(folder, "*.xml").Where(f => !backup.Contains(Path.GetFileName(f))))
        {
            File.Delete(file);
        }

        WriteAgentState(folder, first);
        await Eventually.UntilAsync(() => node.Logs.Of("Dpkeyring.AspNetCore").Any(l => l.EventId == 10), "the node saw the older folder");
        Assert.Equal(newKey, node.ProtectingKeyId());
        Assert.ThrowsAny<CryptographicException>(() => node.Unprotect(leaked));
    }

    [Fact]
    public async Task AgentFolder_ListingThatLagsTheStateFile_AsOnANetworkShare_TheRestOfTheVersionIsStillTaken()
    {
        var (store, folder) = FolderWithTheServersElements();
        WriteAgentState(folder, (await Server.StatusAsync()).GetProperty("version").GetInt64());
        await using var node = TestNode.CreateForAgentFolder(Server, folder);
        await node.Host.StartAsync();
        var leaked = node.Protect("made with the leaked key");

        // A read that sees the new version's state file but not yet all its files, as a network
        // share's cached directory listing can: the new key without the revocation of the leaked one.
        var newKey = Guid.Parse((await Server.RotateAsync(immediate: true, revokePrevious: true)).GetProperty("key_id").GetString()!);
        long second = (await Server.StatusAsync()).GetProperty("version").GetInt64();
        Place(Path.Combine(store, $"key-{newKey}.xml"), folder);
        WriteAgentState(folder, second);
        await Eventually.UntilAsync(() => Loaded(node, second), "the node took the torn read");
        Assert.Equal("made with the leaked key", node.Unprotect(leaked));

        // The rest of the version shows: the node takes it, though the version is the same.
        CopyNewElements(store, folder);
        await Eventually.UntilAsync(() => Refuses(node, leaked), "the node refuses the leaked key once the revocation shows");
        Assert.Equal(newKey, node.ProtectingKeyId());
    }

    [UnixFact]
    [UnsupportedOSPlatform("windows")]
    public async Task AgentFolderRead_DuringWhichTheAgentRecordsAVersion_NeverLabelsHalfThatVersionsFilesWithIt()
    {
        // Fault injection (Linux): the state file is a FIFO, so reading it waits until the test
        // writes it: the agent recording the version at that very moment of the node's read.
        var (store, folder) = FolderWithTheServersElements();
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

        // Opening the FIFO for writing returns once the read has opened it for reading.
        await using (var writer = await Task.Run(() => new FileStream(state, FileMode.Open, FileAccess.Write)).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            // The agent finishes the version (its revocation), then records it.
            CopyNewElements(store, folder);
            await writer.WriteAsync(Encoding.UTF8.GetBytes($$"""{"ring": "default", "version": {{second}}}"""));
        }

        var snapshot = await read.WaitAsync(TimeSpan.FromSeconds(10));

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

    /// <summary>A new folder holding the key and revocation files of the server's store folder, as the agent writes them (no state file yet).</summary>
    private (string Store, string Folder) FolderWithTheServersElements()
    {
        var store = Path.Combine(Server.DataDirectory, "default");
        var folder = Path.Combine(Server.WorkDirectory, "keys");
        Directory.CreateDirectory(folder);
        CopyNewElements(store, folder);
        return (store, folder);
    }

    private static bool Refuses(TestNode node, string payload)
    {
        try
        {
            node.Unprotect(payload);
            return false;
        }
        catch (CryptographicException)
        {
            return true;
        }
    }

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
    private static void Place(string file, string folder) =>
        WriteWhole(folder, Path.GetFileName(file), File.ReadAllBytes(file));

    /// <summary>Writes <paramref name="name"/> in <paramref name="folder"/> as the agent does: under a temporary name (not *.xml), then renamed over it.</summary>
    private static void WriteWhole(string folder, string name, byte[] content)
    {
        var temp = Path.Combine(folder, $".dpkeyring-{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(temp, content);
        File.Move(temp, Path.Combine(folder, name), overwrite: true);
    }

    /// <summary>Records <paramref name="version"/> in the folder's state file as the agent does: a new file renamed over it.</summary>
    private static void WriteAgentState(string folder, long version) =>
        WriteWhole(folder, ".dpkeyring-agent.json", Encoding.UTF8.GetBytes($$"""{"ring": "default", "version": {{version}}}""" + "\n"));
}
