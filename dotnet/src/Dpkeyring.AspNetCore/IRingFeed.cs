namespace Dpkeyring.AspNetCore;

/// <summary>
/// Where new versions of the ring come from: the server (<see cref="HttpRingFeed"/>) or an
/// agent's folder (<see cref="FolderRingFeed"/>). Both feed one <see cref="RingFollower"/>, so
/// validation, the swap, the key manager's change token, logs, metrics and health are one code path.
/// </summary>
internal interface IRingFeed : IDisposable
{
    /// <summary>What logs and messages call the source: the server's URL or the folder's path.</summary>
    string Description { get; }

    /// <summary>How long without an answer before the health check says Degraded; null for a folder.</summary>
    TimeSpan? StaleAfter { get; }

    /// <summary>The last-known-good copy, for a source that can be away (the server); null for a folder.</summary>
    LastKnownGoodCache? Cache { get; }

    /// <summary>
    /// True when the source only ever adds elements, also within one version (the agent's folder:
    /// it never deletes or rewrites a file), so that a same-version read holding every element
    /// held and more is the rest of that version, never a rollback. False for the server, whose
    /// same-version answers are ignored.
    /// </summary>
    bool AppendOnly { get; }

    /// <summary>
    /// Waits before the next fetch: after a failure <paramref name="retryDelay"/>; otherwise as
    /// the source needs (the server's long-poll waits by itself; a folder waits for a change).
    /// </summary>
    Task PauseAsync(TimeSpan? retryDelay, CancellationToken cancellationToken);

    /// <summary>
    /// Reads the ring. Returns null when it is unchanged since <paramref name="etag"/>. With
    /// <paramref name="wait"/>, the server holds the request until the ring changes or the wait
    /// ends. Throws <see cref="FeedException"/> on any failure.
    /// </summary>
    Task<RingSnapshot?> FetchAsync(string? etag, TimeSpan? wait, TimeSpan timeout, CancellationToken cancellationToken);
}
