using System.Diagnostics.Metrics;

namespace Dpkeyring.Bench.Node;

/// <summary>
/// Prints <c>RING &lt;unix ms&gt;</c> when the package has taken a new ring version into use: it listens
/// to the package's <c>dpkeyring.fetches</c> counter, which counts <c>result=changed</c> once the new
/// version is validated and swapped in and ASP.NET Core's key ring has been rebuilt. The gap from the
/// server's answer to this line is the node's own share of a rotation; the next <c>KEY</c> line comes
/// at about the same time (the protect loop may see the new key a little before the counter).
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
