using Dpkeyring.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>The health thresholds, driven by a fake clock instead of sleeping.</summary>
public sealed class HealthTests(ITestOutputHelper output) : RealServerTest(output)
{
    [Fact]
    public async Task Health_IsDegradedAfterTwoPollWaitsWithoutAnAnswer_AndWhenNoKeyIsActiveAnyMore()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var proxy = await FaultProxy.StartAsync(Server.Url);
        await using var node = await TestNode.StartAsync(Server, o => { o.Url = proxy.Url; o.PollWait = TimeSpan.FromSeconds(60); }, services => services.AddSingleton<TimeProvider>(clock));
        Assert.Equal(HealthStatus.Healthy, (await node.HealthAsync()).Status);

        // From here no request of the node is answered. (Were the server still answering, the
        // retry that follows the long-poll's timeout on the fake clock would be answered at once
        // and reset the last-answer time, as it should in production, before the checks below.)
        proxy.Fault = FaultProxy.Hold;

        clock.Advance(TimeSpan.FromSeconds(119));
        Assert.Equal(HealthStatus.Healthy, (await node.HealthAsync()).Status);

        clock.Advance(TimeSpan.FromSeconds(2));
        var degraded = await node.HealthAsync();
        Assert.Equal(HealthStatus.Degraded, degraded.Status);
        Assert.Contains("more than two poll waits", degraded.Description, StringComparison.Ordinal);

        // The server's only key expires after 90 days: ASP.NET Core then protects with it as a
        // fallback key, and the health check says that no key is active.
        clock.Advance(TimeSpan.FromDays(91));
        var expired = await node.HealthAsync();
        Assert.Equal(HealthStatus.Degraded, expired.Status);
        Assert.Contains("is active", expired.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HealthCheckWithoutThePackageConfigured_SaysHowToConfigureIt()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHealthChecks().AddDpkeyring();
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.Equal(HealthStatus.Unhealthy, report.Entries["dpkeyring"].Status);
        Assert.Contains("PersistKeysToDpkeyring", report.Entries["dpkeyring"].Description, StringComparison.Ordinal);
    }
}
