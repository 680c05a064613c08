using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Healthy while the ring is current; Degraded when the server has not answered for longer than
/// two poll waits, answered something that is not a usable ring, or no key is active by the node's
/// clock (the node still works); Unhealthy when the node has no usable key or the server refuses
/// its token.
/// </summary>
internal sealed class DpkeyringHealthCheck : IHealthCheck
{
    private readonly RingFollower? _follower;
    private readonly TimeProvider _time;

    public DpkeyringHealthCheck(RingFollower? follower, TimeProvider time)
    {
        _follower = follower;
        _time = time;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var failure = context.Registration?.FailureStatus ?? HealthStatus.Unhealthy;
        if (_follower is null)
        {
            return Task.FromResult(new HealthCheckResult(failure, "dpkeyring is not configured: call PersistKeysToDpkeyring or UseDpkeyringAgentFolder on AddDataProtection()."));
        }

        var status = _follower.Status;
        var now = _time.GetUtcNow();
        var data = new Dictionary<string, object>
        {
            ["ring"] = _follower.Ring,
            ["source"] = _follower.Feed.Description,
        };
        if (status.Ring?.Version is long version)
        {
            data["ring_version"] = version;
        }

        if (status.LastAnswer is { } last)
        {
            data["last_success_age_seconds"] = Math.Round((now - last).TotalSeconds, 1);
        }

        if (status.Problem is { } p)
        {
            data["problem"] = p.KindName;
        }

        string versionText = RingSnapshot.VersionText(status.Ring);
        HealthCheckResult result;
        if (status.Ring is null)
        {
            result = new HealthCheckResult(failure, "no key ring loaded yet" + (status.Problem is { } p0 ? ": " + p0.Message : "."), data: data);
        }
        else if (!status.Ring.HasUsableKey)
        {
            result = new HealthCheckResult(failure, $"ring version {versionText} has no key that can protect (all revoked or unreadable).", data: data);
        }
        else if (status.Problem is { Kind: FeedProblemKind.TokenRefused } refused)
        {
            result = new HealthCheckResult(failure, refused.Message, data: data);
        }
        else if (!status.Ring.HasActiveKey(now))
        {
            result = HealthCheckResult.Degraded(
                $"no key of ring version {versionText} is active at {now:u} by this node's clock: ASP.NET Core protects with a fallback key. Check the node's clock, and that the server rotates the ring.",
                data: data);
        }
        else if (status.Problem is { Kind: FeedProblemKind.BadAnswer or FeedProblemKind.RingNotFound } bad)
        {
            result = HealthCheckResult.Degraded($"{bad.Message} The node works on ring version {versionText}.", data: data);
        }
        else if (_follower.Feed.StaleAfter is { } staleAfter && status.LastAnswer is { } lastAnswer && now - lastAnswer > staleAfter)
        {
            result = HealthCheckResult.Degraded(
                $"{_follower.Feed.Description} has not answered for {(now - lastAnswer).TotalSeconds:F0} s (more than two poll waits); the node works on ring version {versionText}."
                + (status.Problem is { } last2 ? " Last error: " + last2.Message : string.Empty),
                data: data);
        }
        else if (status.Problem is { } passing)
        {
            result = HealthCheckResult.Healthy($"ring version {versionText}; the last try failed and is being retried: {passing.Message}", data);
        }
        else
        {
            result = HealthCheckResult.Healthy($"ring version {versionText} is current.", data);
        }

        return Task.FromResult(result);
    }
}
