using Microsoft.AspNetCore.DataProtection;

namespace Dpkeyring.Bench.Node;

/// <summary>
/// Protects a small payload in a loop, as a busy node does for every response, and prints
/// <c>KEY &lt;key id&gt; &lt;unix ms&gt;</c> whenever the key in the payload differs from the previous one.
/// </summary>
internal sealed class KeyWatcher
{
    // Header of a Data Protection payload: 4 bytes of magic, then the key id (16 bytes).
    private const int KeyIdOffset = 4;
    private const int KeyIdLength = 16;

    private readonly IDataProtector _protector;
    private readonly TimeSpan _interval;
    private readonly TextWriter _output;

    public KeyWatcher(IDataProtectionProvider provider, TimeSpan interval, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(provider);
        _protector = provider.CreateProtector("Dpkeyring.Bench.Node");
        _interval = interval;
        _output = output;
    }

    /// <summary>The key id of a protected payload.</summary>
    public static Guid KeyIdOf(byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return new Guid(payload.AsSpan(KeyIdOffset, KeyIdLength));
    }

    /// <summary>Runs until <paramref name="stopping"/> fires; a failing Protect is printed as <c>ERR</c> once per message.</summary>
    public void Run(CancellationToken stopping)
    {
        byte[] plaintext = "dpkeyring bench"u8.ToArray();
        Guid last = Guid.Empty;
        string? lastError = null;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                Guid keyId = KeyIdOf(_protector.Protect(plaintext));
                string at = BenchClock.Now();
                lastError = null;
                if (keyId != last)
                {
                    last = keyId;
                    _output.WriteLine($"KEY {keyId:D} {at}");
                }
            }
#pragma warning disable CA1031 // A benchmark node reports the failure (the driver counts it as a miss) and keeps measuring.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                string message = $"{ex.GetType().Name}: {ex.Message}";
                if (message != lastError)
                {
                    lastError = message;
                    _output.WriteLine($"ERR {BenchClock.Now()} {message.ReplaceLineEndings(" ")}");
                }
            }

            if (_interval > TimeSpan.Zero)
            {
                Thread.Sleep(_interval);
            }
        }
    }
}
