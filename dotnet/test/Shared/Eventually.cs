using System.Diagnostics;

namespace Dpkeyring.Testing;

/// <summary>Waits for a condition against a deadline (never a bare sleep that hopes).</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> every 10 ms until it holds; fails with <paramref name="what"/> after <paramref name="timeout"/> (default 10 s).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(10);
        Exception? last = null;
        while (clock.Elapsed < limit)
        {
            try
            {
                if (await condition().ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                last = ex;
            }

            await Task.Delay(10).ConfigureAwait(false);
        }

        throw new TimeoutException($"not within {limit.TotalSeconds:F0} s: {what}" + (last is null ? string.Empty : $" (last error: {last.Message})"), last);
    }

    /// <summary>The synchronous-condition form of <see cref="UntilAsync(Func{Task{bool}}, string, TimeSpan?)"/>.</summary>
    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);
}
