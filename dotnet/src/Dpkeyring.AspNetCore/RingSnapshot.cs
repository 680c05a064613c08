using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace Dpkeyring.AspNetCore;

/// <summary>One version of the ring as a source delivered it, before and after validation.</summary>
internal sealed class RingSnapshot
{
    /// <summary>The largest ring document accepted (after decompression): about 8,000 keys.</summary>
    public const int MaxDocumentBytes = 8 * 1024 * 1024;

    public RingSnapshot(IReadOnlyList<XElement> elements, string source, string? etag, long? version, byte[]? document)
    {
        Elements = elements;
        Source = source;
        ETag = etag;
        Version = version;
        Document = document;
    }

    /// <summary>The key and revocation elements, as <c>IXmlRepository.GetAllElements</c> returns them.</summary>
    public IReadOnlyList<XElement> Elements { get; }

    /// <summary>Where the ring came from (the server's URL, a folder, a last-known-good file), for logs.</summary>
    public string Source { get; }

    /// <summary>The server's ETag (or a content hash for a folder): sent back as <c>If-None-Match</c>.</summary>
    public string? ETag { get; }

    /// <summary>The server's ring version, when known.</summary>
    public long? Version { get; }

    /// <summary>The server's <c>&lt;repository&gt;</c> document as received, kept as the last-known-good copy.</summary>
    public byte[]? Document { get; }

    /// <summary>A copy of the elements for ASP.NET Core, whose key manager may change what a repository gives it.</summary>
    public List<XElement> CopyElements() => Elements.Select(e => new XElement(e)).ToList();

    /// <summary>A ring's version for logs and messages: its number, "(unnumbered)", or "(none)" for no ring.</summary>
    public static string VersionText(RingSnapshot? snapshot) =>
        snapshot?.Version?.ToString(CultureInfo.InvariantCulture) ?? (snapshot is null ? "(none)" : "(unnumbered)");

    /// <summary>What ASP.NET Core's own key manager made of the elements; set by <see cref="RingValidator"/>.</summary>
    public IReadOnlyList<KeySummary> Keys { get; set; } = [];

    /// <summary>
    /// Whether ASP.NET Core can protect with this ring at all: some key loads and is not revoked.
    /// With automatic generation off, ASP.NET Core falls back to such a key when none is active
    /// (<c>DefaultKeyResolver</c>'s fallback key), so this is the rule for taking a ring: a node
    /// whose clock is behind still takes an emergency rotation that revokes its active key.
    /// </summary>
    public bool HasUsableKey => Keys.Any(k => k.Loads && !k.Revoked);

    /// <summary>Whether a key can be the default key now: usable, active (5 minutes of clock skew allowed), not expired.</summary>
    public bool HasActiveKey(DateTimeOffset now) => Keys.Any(k => k.IsActive(now));

    /// <summary>The key ASP.NET Core will most likely protect with now (the active key activated last), for logs.</summary>
    public Guid? LikelyDefaultKey(DateTimeOffset now) =>
        Keys.Where(k => k.IsActive(now) && k.Activation <= now).OrderByDescending(k => k.Activation).Select(k => (Guid?)k.Id).FirstOrDefault()
        ?? Keys.Where(k => k.IsActive(now)).OrderBy(k => k.Activation).Select(k => (Guid?)k.Id).FirstOrDefault();

    /// <summary>
    /// Parses a <c>&lt;repository&gt;</c> document (the server's ring, the last-known-good copy)
    /// without DTDs or external resolution. Throws <see cref="RingFormatException"/> with a
    /// message for an operator.
    /// </summary>
    public static List<XElement> ParseRepository(byte[] document)
    {
        XDocument xml;
        try
        {
            xml = Load(document);
        }
        catch (XmlException ex)
        {
            throw new RingFormatException($"it is not a complete XML document ({ex.Message})", ex);
        }

        if (xml.Root is not { Name.LocalName: "repository" } root || root.Name.Namespace != XNamespace.None)
        {
            throw new RingFormatException($"its root element is <{xml.Root?.Name.LocalName}>, not <repository>");
        }

        return root.Elements().ToList();
    }

    /// <summary>Parses one element file of a key folder, as <c>FileSystemXmlRepository</c> reads it.</summary>
    public static XElement ParseElementFile(byte[] content)
    {
        try
        {
            return Load(content).Root ?? throw new RingFormatException("it has no root element");
        }
        catch (XmlException ex)
        {
            throw new RingFormatException($"it is not well-formed XML ({ex.Message})", ex);
        }
    }

    private static XDocument Load(byte[] content)
    {
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            MaxCharactersFromEntities = 0,
            MaxCharactersInDocument = MaxDocumentBytes,
            IgnoreProcessingInstructions = true,
        };
        using var stream = new MemoryStream(content, writable: false);
        using var reader = XmlReader.Create(stream, settings);
        return XDocument.Load(reader, LoadOptions.None);
    }
}

/// <summary>A key as ASP.NET Core's key manager read it.</summary>
internal readonly record struct KeySummary(Guid Id, DateTimeOffset Activation, DateTimeOffset Expiration, bool Revoked, bool Loads)
{
    /// <summary>The clock skew ASP.NET Core's default key resolver allows between servers.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    public bool IsActive(DateTimeOffset now) => Loads && !Revoked && Activation <= now + ClockSkew && Expiration > now;
}

/// <summary>A ring document or element that cannot be used; the message says why, for an operator.</summary>
internal sealed class RingFormatException : Exception
{
    public RingFormatException(string message)
        : base(message)
    {
    }

    public RingFormatException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
