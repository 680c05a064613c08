using System.Diagnostics.Metrics;

namespace Dpkeyring.Bench.Node;

/// <summary>
/// Prints <c>RING &lt;unix ms&gt;</c> when the package has swapped in a new ring version: it listens to
/// the package's <c>dpkeyring.fetches</c> counter, which counts <c>result=changed</c> right after the
/// new version is validated and ASP.NET Core's key ring is expired, and before the package waits for
/// the rebuild. The gap to the next <c>KEY</c> line is the node's own share of a rotation.
/// </summary>
internal sealed class RingChangeListener : IDisposable
{
    private const string MeterName = "Dpkeyring.AspNetCore";
    private const string FetchesInstrument = "dpkeyring.fetches";

    private readonly MeterListener _listener = new();
    private readonly TextWriter _output;

    public RingChangeListener(TextWriter output)
    {
        _output = output;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName && instrument.Name == FetchesInstrument)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>(OnFetch);
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();

    private void OnFetch(Instrument instrument, long measurement, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "result" && tag.Value is "changed")
            {
                _output.WriteLine($"RING {BenchClock.Now()}");
                return;
            }
        }
    }
}
