using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.KeyManagement;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Decorates ASP.NET Core's key manager: reads go to it unchanged, its cache expiration token also
/// fires when a new ring version arrives (the one supported way to make a running node drop its
/// cached key ring), and every write is refused.
/// </summary>
internal sealed class DpkeyringKeyManager : IKeyManager
{
    private readonly IKeyManager _inner;
    private readonly RingFollower _follower;
    private readonly object _gate = new();
    private (CancellationToken Inner, CancellationToken Ring, CancellationTokenSource Linked)? _linked;

    public DpkeyringKeyManager(IKeyManager inner, RingFollower follower)
    {
        _inner = inner;
        _follower = follower;
    }

    public IKey CreateNewKey(DateTimeOffset activationDate, DateTimeOffset expirationDate) =>
        throw DpkeyringXmlRepository.OnlyWriter(_follower.Ring, "create keys");

    public IReadOnlyCollection<IKey> GetAllKeys() => _inner.GetAllKeys();

    /// <summary>
    /// Fires when the inner manager's token does or the ring changes. One linked source per pair of
    /// tokens (both fire at most once), so asking again for the same pair allocates nothing.
    /// </summary>
    public CancellationToken GetCacheExpirationToken()
    {
        var inner = _inner.GetCacheExpirationToken();
        var ring = _follower.ChangeToken;
        if (!inner.CanBeCanceled)
        {
            return ring;
        }

        lock (_gate)
        {
            if (_linked is { } cached && cached.Inner == inner && cached.Ring == ring)
            {
                return cached.Linked.Token;
            }

            // The previous pair has fired (a token only changes after it fires), so its linked
            // source has fired too: disposing it only unregisters it from the old tokens.
            _linked?.Linked.Dispose();
            var linked = CancellationTokenSource.CreateLinkedTokenSource(inner, ring);
            _linked = (inner, ring, linked);
            return linked.Token;
        }
    }

    public void RevokeAllKeys(DateTimeOffset revocationDate, string? reason = null) =>
        throw DpkeyringXmlRepository.OnlyWriter(_follower.Ring, "revoke keys");

    public void RevokeKey(Guid keyId, string? reason = null) =>
        throw DpkeyringXmlRepository.OnlyWriter(_follower.Ring, "revoke keys");
}
