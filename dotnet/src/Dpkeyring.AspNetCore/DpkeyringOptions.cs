namespace Dpkeyring.AspNetCore;

/// <summary>
/// Where and how a node reads its Data Protection key ring from a dpkeyring server.
/// Bound from configuration (the <c>Dpkeyring</c> section by convention) or set in code, and
/// validated when the host starts: a setting that is wrong stops the start with a message that
/// names it.
/// </summary>
public sealed class DpkeyringOptions
{
    /// <summary>
    /// The server's base URL, for example <c>https://keys.internal:8443</c>. Plain <c>http://</c>
    /// is refused unless the host is a loopback address or <see cref="AllowInsecureHttp"/> is set:
    /// the ring carries master keys.
    /// </summary>
    public string? Url { get; set; }

    /// <summary>The ring to read. Default <c>default</c>.</summary>
    public string Ring { get; set; } = "default";

    /// <summary>
    /// A file holding a node token (one final newline is ignored). Preferred over
    /// <see cref="Token"/>: it keeps the secret out of configuration, and it is read again before
    /// every request, so a replaced token takes effect without a restart.
    /// </summary>
    public string? TokenFile { get; set; }

    /// <summary>The node token itself, when a file is not possible. Set this or <see cref="TokenFile"/>, not both.</summary>
    public string? Token { get; set; }

    /// <summary>
    /// The name this node reports to the server as <c>X-Node-Id</c> (1 to 128 of
    /// <c>A-Z a-z 0-9 . _ : @ / -</c>). Default: the machine name.
    /// </summary>
    public string? NodeId { get; set; }

    /// <summary>
    /// The folder where the last-known-good ring is kept, so that a node can start while the
    /// server is away. Default: a folder per application under the operating system's local
    /// application data (<c>%LOCALAPPDATA%\dpkeyring\…</c> on Windows,
    /// <c>~/.local/share/dpkeyring/…</c> on Linux), never the content root. The folder and the
    /// file are readable only by the application's user.
    /// </summary>
    public string? CacheDirectory { get; set; }

    /// <summary>
    /// A PEM file of CA certificates to trust for an <c>https://</c> server with a private CA.
    /// When set, only these CAs are trusted for the server's certificate.
    /// </summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>
    /// How long one long-poll request waits for a change (the server caps it, 120 s by default).
    /// Default 60 seconds; from 1 second to 10 minutes. The health check reports Degraded when the
    /// server has not answered for longer than two of these.
    /// </summary>
    public TimeSpan PollWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Allows a plain <c>http://</c> URL to a host that is not a loopback address. Default
    /// <see langword="false"/>: the key ring would cross the network in clear text.
    /// </summary>
    public bool AllowInsecureHttp { get; set; }

    /// <summary>
    /// How long the first fetch may take when the node starts before the last-known-good copy is
    /// used instead. Default 10 seconds; from 1 second to 5 minutes.
    /// </summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
