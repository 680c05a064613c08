using Microsoft.Extensions.Hosting;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Loads the ring when the host starts, so that a node with neither server nor last-known-good
/// copy fails at start with a clear error instead of at its first request.
/// </summary>
internal sealed class DpkeyringStartup : IHostedService
{
    private readonly RingFollower _follower;

    public DpkeyringStartup(RingFollower follower) => _follower = follower;

    public Task StartAsync(CancellationToken cancellationToken) => _follower.EnsureStartedAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
