using System.Globalization;
using System.Text;
using System.Xml.Linq;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// The last ring the server gave, kept on disk so that a node can start while the server is away:
/// <c>{CacheDirectory}/{ring}.xml</c>, the server's <c>&lt;repository&gt;</c> document with one
/// comment after the XML declaration recording the ring version (so the file still reads with
/// <c>dpkeyring keys list --keys FILE</c>). Readable only by the application's user.
/// </summary>
internal sealed class LastKnownGoodCache
{
    private const string VersionMarker = " dpkeyring-version: ";

    public LastKnownGoodCache(string directory, string ring)
    {
        Directory = directory;
        FilePath = Path.Combine(directory, ring + ".xml");
    }

    public string Directory { get; }

    public string FilePath { get; }

    /// <summary>Writes the snapshot's document, replacing the previous copy atomically.</summary>
    public void Write(RingSnapshot snapshot)
    {
        if (snapshot.Document is null)
        {
            return;
        }

        OwnerOnlyFiles.EnsureDirectory(Directory);
        OwnerOnlyFiles.WriteAtomic(FilePath, WithVersionComment(snapshot.Document, snapshot.Version));
    }

    /// <summary>Reads the copy; throws <see cref="RingFormatException"/> with the reason it cannot be used.</summary>
    public (RingSnapshot Snapshot, DateTimeOffset SavedAt) Read()
    {
        if (!File.Exists(FilePath))
        {
            throw new RingFormatException($"there is no last-known-good copy at {FilePath}");
        }

        byte[]? content;
        try
        {
            content = OwnerOnlyFiles.ReadOwnerOnly(FilePath, out string? refusal);
            if (content is null)
            {
                throw new RingFormatException($"the last-known-good copy {FilePath} was not used: {refusal}; delete it, it is written again at the next successful fetch");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RingFormatException($"the last-known-good copy {FilePath} cannot be read ({ex.Message})", ex);
        }

        List<XElement> elements;
        try
        {
            elements = RingSnapshot.ParseRepository(content);
        }
        catch (RingFormatException ex)
        {
            throw new RingFormatException($"the last-known-good copy {FilePath} is damaged: {ex.Message}", ex);
        }

        var savedAt = new DateTimeOffset(File.GetLastWriteTimeUtc(FilePath), TimeSpan.Zero);
        return (new RingSnapshot(elements, FilePath, etag: null, ReadVersion(content), document: null), savedAt);
    }

    private static byte[] WithVersionComment(byte[] document, long? version)
    {
        if (version is null)
        {
            return document;
        }

        byte[] comment = Encoding.UTF8.GetBytes($"<!--{VersionMarker}{version.Value.ToString(CultureInfo.InvariantCulture)} -->");
        int insertAt = 0;
        var span = document.AsSpan();
        if (span.StartsWith("<?xml"u8) || span.StartsWith("\uFEFF<?xml"u8))
        {
            int end = span.IndexOf("?>"u8);
            insertAt = end < 0 ? 0 : end + 2;
        }

        var result = new byte[document.Length + comment.Length];
        span[..insertAt].CopyTo(result);
        comment.CopyTo(result.AsSpan(insertAt));
        span[insertAt..].CopyTo(result.AsSpan(insertAt + comment.Length));
        return result;
    }

    private static long? ReadVersion(byte[] content)
    {
        var head = Encoding.UTF8.GetString(content, 0, Math.Min(content.Length, 512));
        int at = head.IndexOf(VersionMarker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var digits = head.AsSpan(at + VersionMarker.Length);
        int length = 0;
        while (length < digits.Length && char.IsAsciiDigit(digits[length]))
        {
            length++;
        }

        return long.TryParse(digits[..length], NumberStyles.None, CultureInfo.InvariantCulture, out long version) ? version : null;
    }
}
