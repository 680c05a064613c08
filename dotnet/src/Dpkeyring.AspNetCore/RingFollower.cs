using System.Diagnostics.Metrics;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.KeyManagement.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Holds the ring a node uses and follows its source: the first load (from the source, else the
/// last-known-good copy, else a start failure), then a background loop that swaps in every new
/// valid version and fires the change token that expires ASP.NET Core's cached key ring at once.
/// A bad answer never replaces a good ring; each failure is logged once per state change, counted,
/// and shown by the health check.
/// </summary>
internal sealed class RingFollower : IAsyncDisposable
{
    /// <summary>The name of the package's meter.</summary>
    public const string MeterName = "Dpkeyring.AspNetCore";

    private static readonly TimeSpan RequestMargin = TimeSpan.FromSeconds(30);

    private readonly IRingFeed _feed;
    private readonly RingValidator _validator;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _ring;
    private readonly TimeSpan _pollWait;
    private readonly TimeSpan _startupTimeout;
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _fetches;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _gate = new();

    private volatile RingSnapshot? _current;
    private CancellationTokenSource _changed = new();
    private Task? _start;
    private Task? _loop;
    private FeedProblem? _problem;
    private DateTimeOffset? _problemSince;
    private DateTimeOffset? _lastSuccess;
    private string? _lastCacheError;
    private long? _olderLoggedFor;

    public RingFollower(IRingFeed feed, RingValidator validator, string ring, TimeSpan pollWait, TimeSpan startupTimeout, IServiceProvider services, TimeProvider time, ILoggerFactory loggerFactory, IMeterFactory? meterFactory)
    {
        _feed = feed;
        _validator = validator;
        _ring = ring;
        _pollWait = pollWait;
        _startupTimeout = startupTimeout;
        _services = services;
        _time = time;
        _logger = loggerFactory.CreateLogger(Log.Category);

        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _fetches = _meter.CreateCounter<long>("dpkeyring.fetches", unit: "{fetch}", description: "Reads of the ring by result: changed, unchanged, error.");
        _meter.CreateObservableGauge("dpkeyring.ring.version", ObserveVersion, unit: "{version}", description: "The version of the ring the node holds.");
        _meter.CreateObservableGauge("dpkeyring.last_success.age", ObserveAge, unit: "s", description: "Seconds since the source last answered.");
    }

    /// <summary>The source, for the health check.</summary>
    public IRingFeed Feed => _feed;

    /// <summary>The ring's name.</summary>
    public string Ring => _ring;

    /// <summary>Fires when a new ring version is swapped in; then replaced by a new one.</summary>
    public CancellationToken ChangeToken => Volatile.Read(ref _changed).Token;

    /// <summary>The ring now held, the current problem and the last answer, for the health check.</summary>
    public FollowerStatus Status
    {
        get
        {
            lock (_gate)
            {
                return new FollowerStatus(_current, _problem, _lastSuccess);
            }
        }
    }

    /// <summary>
    /// The elements of the ring now held, for <c>IXmlRepository.GetAllElements</c>. Loads the ring
    /// first when nothing has (a synchronous wait, once, bounded by the startup timeout).
    /// </summary>
    public IReadOnlyCollection<XElement> GetElements()
    {
        var current = _current;
        if (current is null)
        {
            // Sync over async only here, at the very first use, as the Azure Blob repository does;
            // the work runs on the thread pool, so no synchronization context can deadlock it.
            EnsureStartedAsync(CancellationToken.None).GetAwaiter().GetResult();
            current = _current!;
        }

        return current.CopyElements();
    }

    /// <summary>Loads the ring (the host's start awaits this, so a node without keys does not start) and starts following it.</summary>
    public Task EnsureStartedAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_start is null || _start.IsFaulted || _start.IsCanceled)
            {
                _start = Task.Run(StartCoreAsync, CancellationToken.None);
            }

            return _start.WaitAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _feed.Dispose();
        if (_ownsMeter)
        {
            _meter.Dispose();
        }

        _stopping.Dispose();
    }

    private async Task StartCoreAsync()
    {
        if (_current is not null)
        {
            return;
        }

        try
        {
            var snapshot = await _feed.FetchAsync(etag: null, wait: null, _startupTimeout, _stopping.Token).ConfigureAwait(false);
            await AcceptAsync(snapshot!, fromSource: true, _stopping.Token).ConfigureAwait(false);
        }
        catch (FeedException failure)
        {
            Count("error");
            if (_feed.Cache is not { } cache)
            {
                throw new InvalidOperationException(
                    $"dpkeyring: there is no usable key ring in {_feed.Description}: {failure.Problem.Message} "
                    + "A node never makes keys of its own, so it cannot start without them. Keep the folder filled by 'dpkeyring agent' "
                    + "(run 'dpkeyring agent --once' before the application starts).",
                    failure);
            }

            RingSnapshot cached;
            DateTimeOffset savedAt;
            try
            {
                (cached, savedAt) = cache.Read();
                _validator.Validate(cached);
            }
            catch (RingFormatException cacheProblem)
            {
                throw new InvalidOperationException(
                    $"dpkeyring: no key ring to start with. The server did not give ring '{_ring}': {failure.Problem.Message} "
                    + $"And {cacheProblem.Message}. A node never makes keys of its own, so it cannot start: start or fix the server "
                    + "(or the setting named above), then start the node again.",
                    failure);
            }

            lock (_gate)
            {
                _current = cached;
                _problem = failure.Problem;
                _problemSince = _time.GetUtcNow();

                // The server last answered when it gave this copy.
                _lastSuccess = savedAt;
            }

            Log.StartedFromCache(_logger, _ring, failure.Problem.Message, cache.FilePath, RingSnapshot.VersionText(cached), savedAt);
        }

        _loop = Task.Run(() => FollowAsync(_stopping.Token), CancellationToken.None);
    }

    private async Task FollowAsync(CancellationToken stopping)
    {
        var backoff = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        // After a failure (or an older version) ask again after a backoff delay, without waiting.
        bool retrySoon = Volatile.Read(ref _problem) is not null;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await _feed.PauseAsync(retrySoon ? backoff.Next() : null, stopping).ConfigureAwait(false);

                // The first request after a failure does not wait, so a returning server sees the node at once.
                var wait = retrySoon ? (TimeSpan?)null : _pollWait;
                var snapshot = await _feed.FetchAsync(_current?.ETag, wait, (wait ?? TimeSpan.Zero) + RequestMargin, stopping).ConfigureAwait(false);
                if (snapshot is not null && NotNewerThanHeld(snapshot) is { } older && !CompletesHeldVersion(snapshot, older))
                {
                    // The same version again is no change (a server or proxy that ignored
                    // If-None-Match), and an older one must not be taken: a replica behind a load
                    // balancer that has not refreshed yet, or a replayed answer, would bring back a
                    // key the newer version revoked. Either was answered at once instead of
                    // waiting, so ask again after a backoff delay. (A store restored to an older
                    // version is taken when the node restarts.)
                    Succeeded("unchanged");
                    if (older && _olderLoggedFor != _current?.Version)
                    {
                        _olderLoggedFor = _current?.Version;
                        Log.OlderVersionIgnored(_logger, _ring, _feed.Description, RingSnapshot.VersionText(snapshot), RingSnapshot.VersionText(_current));
                    }

                    retrySoon = true;
                    continue;
                }

                if (snapshot is null)
                {
                    Succeeded("unchanged");
                    Log.Unchanged(_logger, _ring, RingSnapshot.VersionText(_current));
                }
                else
                {
                    await AcceptAsync(snapshot, fromSource: true, stopping).ConfigureAwait(false);
                }

                retrySoon = false;
                backoff.Reset();
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (FeedException ex)
            {
                Report(ex.Problem);
                retrySoon = true;
            }
#pragma warning disable CA1031 // The loop must outlive any bug: it is the only way a node learns of rotations.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Report(new FeedProblem(FeedProblemKind.BadAnswer, $"unexpected error while following the ring ({ex.GetType().Name}: {ex.Message})."));
                retrySoon = true;
            }
        }
    }

    /// <summary>
    /// A same-version read from an append-only source (the agent's folder) that holds every
    /// element held and more: the rest of a version that an earlier read met only in part. On a
    /// local disk the agent's order (a version's files first, its version last) prevents that
    /// read; on a network share a directory listing can lag behind the state file it lists, and
    /// without this the missing revocation of a leaked key would wait for the next version.
    /// </summary>
    private bool CompletesHeldVersion(RingSnapshot snapshot, bool older)
    {
        if (older || !_feed.AppendOnly || _current is not { } held || snapshot.Elements.Count <= held.Elements.Count)
        {
            return false;
        }

        var offered = snapshot.Elements.Select(e => e.ToString(SaveOptions.DisableFormatting)).ToHashSet(StringComparer.Ordinal);
        return held.Elements.All(e => offered.Contains(e.ToString(SaveOptions.DisableFormatting)));
    }

    /// <summary>Null when the snapshot is newer than the ring held (or either has no version); else whether it is older (true) or the same (false).</summary>
    private bool? NotNewerThanHeld(RingSnapshot snapshot) =>
        snapshot.Version is long offered && _current?.Version is long held && offered <= held ? offered < held : null;

    /// <summary>Validates a new version and swaps it in; a version that fails validation is a <see cref="FeedException"/>.</summary>
    private async Task AcceptAsync(RingSnapshot snapshot, bool fromSource, CancellationToken cancellationToken)
    {
        try
        {
            _validator.Validate(snapshot);
        }
        catch (RingFormatException ex)
        {
            throw new FeedException(new FeedProblem(FeedProblemKind.BadAnswer, $"ring version {RingSnapshot.VersionText(snapshot)} from {snapshot.Source} was not used: {ex.Message}."), ex);
        }

        var keyRingProvider = _current is null ? null : _services.GetService<IKeyRingProvider>();
        var before = TryGetKeyRing(keyRingProvider);

        lock (_gate)
        {
            // Elements first, then the token: ASP.NET Core reads the token before the elements,
            // so it can never keep new-token-old-elements. The old token fires before a new one
            // can be handed out, so a linked token made from the old one has always fired.
            _current = snapshot;
            _changed.Cancel();
            _changed = new CancellationTokenSource();
        }
        if (before is not null)
        {
            await WarmUpAsync(keyRingProvider!, before, snapshot, cancellationToken).ConfigureAwait(false);
        }

        Succeeded("changed");
        Log.RingLoaded(_logger, _ring, RingSnapshot.VersionText(snapshot), snapshot.Source, snapshot.Keys.Count, snapshot.LikelyDefaultKey(_time.GetUtcNow()));

        if (fromSource && _feed.Cache is { } cache)
        {
            WriteCache(cache, snapshot);
        }
    }

    /// <summary>
    /// Makes ASP.NET Core rebuild its key ring now. Since .NET 9 an expired key ring is rebuilt in
    /// the background while callers keep the old one, so the first Protect or Unprotect after a
    /// change would still use it (and accept a revoked key once). Asking until a new ring object
    /// comes back closes that window before the next request. The wait yields its thread: the
    /// rebuild runs on the thread pool, which a blocked thread would starve on a small machine.
    /// </summary>
    private async Task WarmUpAsync(IKeyRingProvider provider, IKeyRing before, RingSnapshot snapshot, CancellationToken cancellationToken)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(2))
        {
            var now = TryGetKeyRing(provider, snapshot);
            if (now is null || !ReferenceEquals(now, before))
            {
                return;
            }

            try
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopping: the ring is swapped in already; what follows (the log line, the
                // last-known-good copy) still runs.
                return;
            }
        }

        Log.WarmUpFailed(_logger, _ring, RingSnapshot.VersionText(snapshot), "ASP.NET Core kept its previous key ring for 2 seconds");
    }

    private IKeyRing? TryGetKeyRing(IKeyRingProvider? provider, RingSnapshot? snapshot = null)
    {
        if (provider is null)
        {
            return null;
        }

        try
        {
            return provider.GetCurrentKeyRing();
        }
#pragma warning disable CA1031 // Reported, and the next use of Data Protection reports it too.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            if (snapshot is not null)
            {
                Log.WarmUpFailed(_logger, _ring, RingSnapshot.VersionText(snapshot), $"{ex.GetType().Name}: {ex.Message}");
            }

            return null;
        }
    }

    private void WriteCache(LastKnownGoodCache cache, RingSnapshot snapshot)
    {
        try
        {
            cache.Write(snapshot);
            _lastCacheError = null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or PlatformNotSupportedException)
        {
            if (_lastCacheError != ex.Message)
            {
                _lastCacheError = ex.Message;
                Log.CacheWriteFailed(_logger, cache.FilePath, ex.Message);
            }
        }
    }

    private void Succeeded(string result)
    {
        Count(result);
        FeedProblem? previous;
        DateTimeOffset? since;
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            previous = _problem;
            since = _problemSince;
            _problem = null;
            _problemSince = null;
            _lastSuccess = now;
        }

        if (previous is not null)
        {
            Log.Recovered(_logger, _ring, _feed.Description, (now - (since ?? now)).TotalSeconds, RingSnapshot.VersionText(_current));
        }
    }

    private void Report(FeedProblem problem)
    {
        Count("error");
        bool isNew;
        lock (_gate)
        {
            // Once per state: an unreachable server is one state whatever the error of each try.
            isNew = _problem is null || _problem.Kind != problem.Kind
                || (problem.Kind != FeedProblemKind.Unreachable && _problem.Message != problem.Message);
            _problem = problem;
            _problemSince ??= _time.GetUtcNow();
        }

        if (!isNew)
        {
            return;
        }

        if (problem.Kind is FeedProblemKind.TokenRefused or FeedProblemKind.RingNotFound)
        {
            Log.FetchRefused(_logger, _ring, problem.Message, RingSnapshot.VersionText(_current), problem.KindName);
        }
        else
        {
            Log.FetchFailed(_logger, _ring, problem.Message, RingSnapshot.VersionText(_current), problem.KindName);
        }
    }

    private void Count(string result) => _fetches.Add(1, new KeyValuePair<string, object?>("result", result));

    private IEnumerable<Measurement<long>> ObserveVersion()
    {
        if (_current?.Version is long version)
        {
            yield return new Measurement<long>(version);
        }
    }

    private IEnumerable<Measurement<double>> ObserveAge()
    {
        if (Status.LastAnswer is { } last)
        {
            yield return new Measurement<double>(Math.Max(0, (_time.GetUtcNow() - last).TotalSeconds));
        }
    }
}

/// <summary>What the health check reads: the ring held, the current problem, and when the source last answered (for a last-known-good copy: when it was saved).</summary>
internal readonly record struct FollowerStatus(RingSnapshot? Ring, FeedProblem? Problem, DateTimeOffset? LastAnswer);
