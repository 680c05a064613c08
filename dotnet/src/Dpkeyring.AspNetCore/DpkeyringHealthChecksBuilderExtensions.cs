using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Dpkeyring.AspNetCore;

/// <summary>Adds the dpkeyring health check.</summary>
public static class DpkeyringHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds the health check of the node's key ring: Healthy while the ring is current; Degraded
    /// when the server has not answered for longer than two poll waits, or answered something that
    /// is not a usable ring (the node still works on the ring it has); Unhealthy (or
    /// <paramref name="failureStatus"/>) when the node has no usable key or the server refuses its token.
    /// </summary>
    /// <remarks>Calling it more than once with one name (a package and the application) adds one check.</remarks>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name. Default <c>dpkeyring</c>.</param>
    /// <param name="failureStatus">The status reported instead of Unhealthy; default Unhealthy.</param>
    /// <param name="tags">Tags to filter health checks by.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddDpkeyring(this IHealthChecksBuilder builder, string name = "dpkeyring", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var registration = new HealthCheckRegistration(
            name,
            services => new DpkeyringHealthCheck(services.GetService<RingFollower>(), services.GetService<TimeProvider>() ?? TimeProvider.System),
            failureStatus,
            tags);

        // Added once per name, after every other registration: a package (Dpkeyring.Umbraco) and
        // the application may both call this, and two checks of one name make every health
        // request fail. A check of this name the application registered itself is kept.
        builder.Services.AddOptions<HealthCheckServiceOptions>().PostConfigure(options =>
        {
            if (!options.Registrations.Any(r => r.Name == name))
            {
                options.Registrations.Add(registration);
            }
        });
        return builder;
    }
}
