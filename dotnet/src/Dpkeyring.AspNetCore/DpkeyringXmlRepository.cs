using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// The node's <see cref="IXmlRepository"/>: answers from the ring held in memory (never from the
/// network on a request's path) and refuses every write, since dpkeyring is the ring's only writer.
/// </summary>
internal sealed class DpkeyringXmlRepository : IXmlRepository
{
    private readonly RingFollower _follower;

    public DpkeyringXmlRepository(RingFollower follower) => _follower = follower;

    public IReadOnlyCollection<XElement> GetAllElements() => _follower.GetElements();

    public void StoreElement(XElement element, string friendlyName) => throw OnlyWriter(_follower.Ring, $"store the element '{friendlyName}'");

    /// <summary>The exception for any write a node attempts.</summary>
    public static InvalidOperationException OnlyWriter(string ring, string what) => new(
        $"dpkeyring is the only writer of the key ring '{ring}': this node does not {what}. "
        + "Create and revoke keys with the dpkeyring server ('dpkeyring rotate', POST /v1/rings/{ring}/rotate or /revoke); "
        + "every node follows within a second.");
}
