using System.Globalization;

namespace Dpkeyring.Bench.Node;

/// <summary>
/// The wall clock the node and the driver script share: Unix time in milliseconds with microsecond
/// digits (<c>CLOCK_REALTIME</c> on Linux, the same clock as bash's <c>$EPOCHREALTIME</c>).
/// </summary>
internal static class BenchClock
{
    /// <summary>Now, as Unix milliseconds with three decimals, for an output line.</summary>
    public static string Now() =>
        ((DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerMillisecond).ToString("F3", CultureInfo.InvariantCulture);
}
