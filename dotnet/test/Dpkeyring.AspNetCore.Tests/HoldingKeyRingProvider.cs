using Microsoft.AspNetCore.DataProtection.KeyManagement.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Dpkeyring.AspNetCore.Tests;

/// <summary>
/// Fault injection: ASP.NET Core's key ring provider, which can be told to keep answering with the
/// key ring it has now (as ASP.NET Core 9+ does while it rebuilds the ring in the background).
/// </summary>
internal sealed class HoldingKeyRingProvider(IKeyRingProvider inner) : IKeyRingProvider
{
    private IKeyRing? _held;
    private int _callsWhileHeld;

    /// <summary>How many times the key ring was asked for since <see cref="Hold"/>.</summary>
    public int CallsWhileHeld => Volatile.Read(ref _callsWhileHeld);

    /// <summary>Replaces Data Protection's key ring provider in <paramref name="services"/> with one that can hold; <paramref name="created"/> receives it when it is made.</summary>
    public static void Install(IServiceCollection services, Action<HoldingKeyRingProvider> created)
    {
        var descriptor = services.Last(d => d.ServiceType == typeof(IKeyRingProvider));
        var implementation = descriptor.ImplementationType ?? throw new InvalidOperationException("Data Protection registered IKeyRingProvider without a type");
        services.Remove(descriptor);
        services.AddSingleton(implementation);
        services.AddSingleton<IKeyRingProvider>(provider =>
        {
            var holding = new HoldingKeyRingProvider((IKeyRingProvider)provider.GetRequiredService(implementation));
            created(holding);
            return holding;
        });
    }

    /// <summary>From now on, answers with the key ring of this moment.</summary>
    public void Hold() => Volatile.Write(ref _held, inner.GetCurrentKeyRing());

    public IKeyRing GetCurrentKeyRing()
    {
        if (Volatile.Read(ref _held) is { } held)
        {
            Interlocked.Increment(ref _callsWhileHeld);
            return held;
        }

        return inner.GetCurrentKeyRing();
    }
}
