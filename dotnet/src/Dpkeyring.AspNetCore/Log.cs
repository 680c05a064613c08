using Microsoft.Extensions.Logging;

namespace Dpkeyring.AspNetCore;

/// <summary>Every log line of the package (category <c>Dpkeyring.AspNetCore</c>), with stable event ids. None carries a token or key material.</summary>
internal static partial class Log
{
    /// <summary>The log category of the package.</summary>
    public const string Category = "Dpkeyring.AspNetCore";

    [LoggerMessage(1, LogLevel.Information, "dpkeyring: ring {Ring} version {Version} loaded from {Source}: {KeyCount} keys, protecting with key {DefaultKey}")]
    public static partial void RingLoaded(ILogger logger, string ring, string version, string source, int keyCount, Guid? defaultKey);

    [LoggerMessage(2, LogLevel.Warning, "dpkeyring: the server could not give ring {Ring} at start ({Problem}); the node starts from the last-known-good copy {Path} (version {Version}, saved {SavedAt:O}) and keeps retrying")]
    public static partial void StartedFromCache(ILogger logger, string ring, string problem, string path, string version, DateTimeOffset savedAt);

    [LoggerMessage(3, LogLevel.Warning, "dpkeyring: ring {Ring}: {Problem} The node keeps ring version {Version} and retries. [{Kind}]")]
    public static partial void FetchFailed(ILogger logger, string ring, string problem, string version, string kind);

    [LoggerMessage(4, LogLevel.Error, "dpkeyring: ring {Ring}: {Problem} The node keeps ring version {Version} and retries. [{Kind}]")]
    public static partial void FetchRefused(ILogger logger, string ring, string problem, string version, string kind);

    [LoggerMessage(5, LogLevel.Information, "dpkeyring: ring {Ring}: {Source} answers again after {Seconds:F0} s; ring version {Version} is current")]
    public static partial void Recovered(ILogger logger, string ring, string source, double seconds, string version);

    [LoggerMessage(6, LogLevel.Warning, "dpkeyring: the last-known-good copy {Path} could not be written: {Reason}. The node works, but cannot start from this version while the server is away")]
    public static partial void CacheWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(7, LogLevel.Warning, "dpkeyring: the token file {Path} can be read by all users; make it readable only by the application's user (chmod 600)")]
    public static partial void TokenFileWorldReadable(ILogger logger, string path);

    [LoggerMessage(8, LogLevel.Debug, "dpkeyring: ring {Ring} unchanged at version {Version}")]
    public static partial void Unchanged(ILogger logger, string ring, string version);

    [LoggerMessage(9, LogLevel.Warning, "dpkeyring: ASP.NET Core's key ring did not reload after ring {Ring} version {Version}: {Reason}")]
    public static partial void WarmUpFailed(ILogger logger, string ring, string version, string reason);

    [LoggerMessage(10, LogLevel.Information, "dpkeyring: ring {Ring}: {Source} answered version {Offered}, older than version {Held} this node holds; ignored (a replica that has not caught up yet, or a store restored from a backup: restart the node to take an older ring)")]
    public static partial void OlderVersionIgnored(ILogger logger, string ring, string source, string offered, string held);
}
