namespace Dpkeyring.AspNetCore;

/// <summary>What kind of trouble a source is in; each maps to a health status.</summary>
internal enum FeedProblemKind
{
    /// <summary>The server (or folder) cannot be reached now: network error, timeout, 5xx, 429. Expected to heal.</summary>
    Unreachable,

    /// <summary>The server refused the token (401, 403), or the token file cannot be read.</summary>
    TokenRefused,

    /// <summary>The server does not serve the ring (404 ring_not_found).</summary>
    RingNotFound,

    /// <summary>An answer that is not a usable ring: HTML from a proxy, truncated or oversized XML, no usable key, a redirect.</summary>
    BadAnswer,
}

/// <summary>A failed fetch: its kind and a message for an operator (what happened and what to do; never a secret).</summary>
internal sealed record FeedProblem(FeedProblemKind Kind, string Message)
{
    /// <summary>The metric and log name of the kind.</summary>
    public string KindName => Kind switch
    {
        FeedProblemKind.Unreachable => "unreachable",
        FeedProblemKind.TokenRefused => "token_refused",
        FeedProblemKind.RingNotFound => "ring_not_found",
        _ => "bad_answer",
    };
}

/// <summary>Thrown by a source when a fetch fails; carries the <see cref="FeedProblem"/>.</summary>
internal sealed class FeedException : Exception
{
    public FeedException(FeedProblem problem, Exception? inner = null)
        : base(problem.Message, inner)
    {
        Problem = problem;
    }

    public FeedProblem Problem { get; }
}

/// <summary>Exponential backoff with jitter: each delay is drawn between half and all of the current step.</summary>
internal sealed class Backoff
{
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private TimeSpan _step;

    public Backoff(TimeSpan min, TimeSpan max)
    {
        _min = min;
        _max = max;
        _step = min;
    }

    public TimeSpan Next()
    {
        var step = _step;
        _step = TimeSpan.FromTicks(Math.Min(_max.Ticks, _step.Ticks * 2));
#pragma warning disable CA5394 // jitter, not security
        return TimeSpan.FromTicks(step.Ticks / 2 + (long)(Random.Shared.NextDouble() * (step.Ticks / 2)));
#pragma warning restore CA5394
    }

    public void Reset() => _step = _min;
}
