using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Reads the key folder the dpkeyring agent keeps (every <c>*.xml</c> file at its top level, as
/// <c>FileSystemXmlRepository</c> reads it), read-only, and reads it again on every change in it
/// (a file system watcher, with a periodic re-read for file systems that do not notify).
/// </summary>
internal sealed class FolderRingFeed : IRingFeed
{
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(20);

    private readonly string _directory;
    private readonly TimeSpan _rereadInterval;
    private readonly TimeProvider _time;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private FileSystemWatcher? _watcher;

    public FolderRingFeed(string directory, TimeSpan rereadInterval, TimeProvider time)
    {
        _directory = Path.GetFullPath(directory);
        _rereadInterval = rereadInterval;
        _time = time;
    }

    public string Description => _directory;

    public TimeSpan? StaleAfter => null;

    public LastKnownGoodCache? Cache => null;

    public bool AppendOnly => true;

    public async Task PauseAsync(TimeSpan? retryDelay, CancellationToken cancellationToken)
    {
        EnsureWatcher();
        var changed = Volatile.Read(ref _changed);
        var delay = Task.Delay(retryDelay ?? _rereadInterval, _time, cancellationToken);
        await Task.WhenAny(changed.Task, delay).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();

        // Take the signal before reading, so a change made while the folder is read signals again.
        Interlocked.CompareExchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), changed);
        if (changed.Task.IsCompleted)
        {
            // Let a burst of file events (the agent writes several files per version) settle.
            await Task.Delay(Settle, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<RingSnapshot?> FetchAsync(string? etag, TimeSpan? wait, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Watch before reading, so that no change after this read goes unnoticed.
        EnsureWatcher();
        if (!Directory.Exists(_directory))
        {
            throw Problem($"the agent folder {_directory} does not exist. Run 'dpkeyring agent --once --dir {_directory} …' before the application starts.");
        }

        // The agent writes a version's files first and its state file (the version) last, so the
        // version read before the files is one whose files are all there; read after them, it
        // could name a version whose files this read met only in part (a new key without the
        // revocation that comes with it), and the complete read that follows would then be
        // ignored as the same version. A version newer than the files' is not possible this way;
        // files newer than the version read are: they only add to it (the agent never deletes or
        // rewrites a file), and the follower takes them (AppendOnly).
        var version = AgentVersion();
        var files = new List<(string Name, byte[] Content)>();
        long total = 0;
        try
        {
            foreach (var path in Directory.EnumerateFiles(_directory, "*.xml", SearchOption.TopDirectoryOnly))
            {
                if (Path.GetExtension(path).Equals(".xml", StringComparison.OrdinalIgnoreCase))
                {
                    total += new FileInfo(path).Length;
                    if (total > RingSnapshot.MaxDocumentBytes)
                    {
                        throw Problem($"the *.xml files in the agent folder {_directory} add up to more than {RingSnapshot.MaxDocumentBytes / 1024 / 1024} MiB, more than any key ring; they were not read.");
                    }

                    files.Add((Path.GetFileName(path), File.ReadAllBytes(path)));
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Problem($"the agent folder {_directory} cannot be read ({ex.Message}); the application must run as the agent's user.");
        }

        files.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        // The version is part of the tag: a node that started before the agent recorded one (or
        // a version recorded without a file change) reads the folder again and learns it, and
        // from then on ignores folder states older than the version it holds.
        var tag = ContentTag(files, version);
        if (tag == etag)
        {
            return Task.FromResult<RingSnapshot?>(null);
        }

        var elements = new List<XElement>(files.Count);
        foreach (var (name, content) in files)
        {
            try
            {
                elements.Add(RingSnapshot.ParseElementFile(content));
            }
            catch (RingFormatException ex)
            {
                throw Problem($"the file {name} in the agent folder {_directory} cannot be used: {ex.Message}. ASP.NET Core would fail the whole key ring; remove or fix it.");
            }
        }

        return Task.FromResult<RingSnapshot?>(new RingSnapshot(elements, _directory, tag, version, document: null));
    }

    public void Dispose() => _watcher?.Dispose();

    private void EnsureWatcher()
    {
        if (_watcher is not null || !Directory.Exists(_directory))
        {
            return;
        }

        try
        {
            var watcher = new FileSystemWatcher(_directory)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                IncludeSubdirectories = false,
            };
            FileSystemEventHandler signal = (_, _) => Volatile.Read(ref _changed).TrySetResult();
            watcher.Created += signal;
            watcher.Changed += signal;
            watcher.Deleted += signal;
            watcher.Renamed += (_, _) => Volatile.Read(ref _changed).TrySetResult();
            watcher.Error += (_, _) => Volatile.Read(ref _changed).TrySetResult();
            watcher.EnableRaisingEvents = true;
            _watcher = watcher;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException)
        {
            // No notifications (inotify limit, a network share): the periodic re-read still works.
        }
    }

    /// <summary>The ring version the agent recorded in <c>.dpkeyring-agent.json</c>, when it is there.</summary>
    private long? AgentVersion()
    {
        try
        {
            var path = Path.Combine(_directory, ".dpkeyring-agent.json");
            if (!File.Exists(path) || new FileInfo(path).Length > 1024 * 1024)
            {
                return null;
            }

            using var json = JsonDocument.Parse(File.ReadAllBytes(path));
            return json.RootElement.TryGetProperty("version", out var v) && v.TryGetInt64(out long version) ? version : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static string ContentTag(List<(string Name, byte[] Content)> files, long? version)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(BitConverter.GetBytes(version ?? -1));
        foreach (var (name, content) in files)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(name));
            hash.AppendData(BitConverter.GetBytes(content.Length));
            hash.AppendData(content);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private static FeedException Problem(string message) => new(new FeedProblem(FeedProblemKind.BadAnswer, message));
}
