using Microsoft.Extensions.Logging;

namespace Dpkeyring.Umbraco;

/// <summary>
/// Every log line of the package (category <c>Dpkeyring.Umbraco</c>), with stable event ids.
/// None carries a token or key material.
/// </summary>
internal static partial class Log
{
    /// <summary>The log category of the package.</summary>
    public const string Category = "Dpkeyring.Umbraco";

    [LoggerMessage(1001, LogLevel.Information, "dpkeyring: off, the configuration has no {UrlSetting}, so Data Protection is left as it was. To read the keys from a dpkeyring server, set {UrlSetting} and {TokenFileSetting} in appsettings.json (or Dpkeyring__Url and Dpkeyring__TokenFile in the environment)")]
    public static partial void NotEnabled(ILogger logger, string urlSetting, string tokenFileSetting);

    [LoggerMessage(1002, LogLevel.Information, "dpkeyring: already set up by the application (PersistKeysToDpkeyring or UseDpkeyringAgentFolder ran before the Umbraco composers), so DpkeyringComposer adds nothing")]
    public static partial void AlreadyConfigured(ILogger logger);

    [LoggerMessage(1003, LogLevel.Information, "dpkeyring: Data Protection keys come from {Url}, ring {Ring}, application name {ApplicationName}")]
    public static partial void Enabled(ILogger logger, string url, string ring, string applicationName);
}
