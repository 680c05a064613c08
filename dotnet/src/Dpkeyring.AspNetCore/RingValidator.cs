using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Internal;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Decides whether a ring may replace the one a node holds, by reading it with ASP.NET Core's own
/// key manager (<see cref="XmlKeyManager"/>, with the application's activator, so certificate
/// decryption and type forwarding work as they will for real) on a scratch repository.
/// </summary>
internal sealed class RingValidator
{
    private readonly IServiceProvider _services;

    public RingValidator(IServiceProvider services) => _services = services;

    /// <summary>
    /// Fills <see cref="RingSnapshot.Keys"/>, or throws <see cref="RingFormatException"/> when
    /// ASP.NET Core could not load the ring or could not protect with it (no key that loads and is
    /// not revoked).
    /// </summary>
    public void Validate(RingSnapshot snapshot)
    {
        IReadOnlyCollection<IKey> keys;
        try
        {
            var options = new KeyManagementOptions
            {
                XmlRepository = new FixedRepository(snapshot),
                AutoGenerateKeys = false,
            };

            // The encryptor factories (CBC, GCM, CNG) are what turn a descriptor into a usable key.
            foreach (var factory in _services.GetRequiredService<IOptions<KeyManagementOptions>>().Value.AuthenticatedEncryptorFactories)
            {
                options.AuthenticatedEncryptorFactories.Add(factory);
            }

            var manager = new XmlKeyManager(Options.Create(options), _services.GetRequiredService<IActivator>(), NullLoggerFactory.Instance);
            keys = manager.GetAllKeys();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // ASP.NET Core would fail the whole key ring the same way (two keys with one id, an
            // unreadable revocation, ...). The message names the problem, never key material.
            throw new RingFormatException($"ASP.NET Core cannot load it as a key ring ({ex.GetType().Name}: {ex.Message})", ex);
        }

        var summaries = new List<KeySummary>(keys.Count);
        foreach (var key in keys)
        {
            summaries.Add(new KeySummary(key.KeyId, key.ActivationDate, key.ExpirationDate, key.IsRevoked, Loads(key)));
        }

        snapshot.Keys = summaries;
        if (!snapshot.HasUsableKey)
        {
            throw new RingFormatException(summaries.Count == 0
                ? "it has no key"
                : $"none of its {summaries.Count} keys can protect (each is revoked or does not load)");
        }
    }

    private static bool Loads(IKey key)
    {
        try
        {
            var encryptor = key.CreateEncryptor();
            (encryptor as IDisposable)?.Dispose();
            return encryptor is not null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return false;
        }
    }

    /// <summary>A read-only repository over the elements of one snapshot.</summary>
    private sealed class FixedRepository : IXmlRepository
    {
        private readonly RingSnapshot _snapshot;

        public FixedRepository(RingSnapshot snapshot) => _snapshot = snapshot;

        public IReadOnlyCollection<XElement> GetAllElements() => _snapshot.CopyElements();

        public void StoreElement(XElement element, string friendlyName) =>
            throw new InvalidOperationException("The scratch repository of the dpkeyring ring check does not store elements.");
    }
}
