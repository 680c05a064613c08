using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Validates <see cref="DpkeyringOptions"/> when the host starts. Every message names the setting
/// as the configuration spells it (<c>Dpkeyring:Url</c>), says what is wrong and what to do, and
/// never quotes a token.
/// </summary>
internal sealed class DpkeyringOptionsValidator : IValidateOptions<DpkeyringOptions>
{
    private readonly DpkeyringSourceOptions _source;

    public DpkeyringOptionsValidator(IOptions<DpkeyringSourceOptions> source) => _source = source.Value;

    public ValidateOptionsResult Validate(string? name, DpkeyringOptions options)
    {
        if (name != Options.DefaultName)
        {
            return ValidateOptionsResult.Skip;
        }

        var failures = new List<string>();
        string p = _source.SettingPrefix;
        if (_source.Server && _source.AgentFolder is not null)
        {
            failures.Add("both PersistKeysToDpkeyring and UseDpkeyringAgentFolder are configured: a node reads its ring from the server or from an agent's folder, not both. Keep one.");
        }

        if (options.PollWait < TimeSpan.FromSeconds(1) || options.PollWait > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{p}PollWait is {options.PollWait}; it must be from 00:00:01 to 00:10:00 (default 00:01:00).");
        }

        if (_source.AgentFolder is { } folder)
        {
            if (string.IsNullOrWhiteSpace(folder))
            {
                failures.Add("UseDpkeyringAgentFolder needs the agent's folder (the --dir of 'dpkeyring agent').");
            }

            return Result(failures);
        }

        ValidateUrl(options, p, failures);
        if (!IsRingName(options.Ring))
        {
            failures.Add($"{p}Ring is '{options.Ring}'; a ring name is 1 to 63 of a-z 0-9 . _ - starting with a letter or digit (default 'default').");
        }

        ValidateToken(options, p, failures);
        if (!string.IsNullOrEmpty(options.NodeId) && (options.NodeId.Length > 128 || !options.NodeId.All(IsNodeIdChar)))
        {
            failures.Add($"{p}NodeId is '{options.NodeId}'; it must be 1 to 128 of A-Z a-z 0-9 . _ : @ / - (default the machine name).");
        }

        if (string.IsNullOrWhiteSpace(options.CacheDirectory))
        {
            failures.Add($"{p}CacheDirectory is not set and this system has no local application data folder to put it in (is HOME set?): set it to a folder only the application's user can read.");
        }
        else if (!Path.IsPathFullyQualified(options.CacheDirectory))
        {
            failures.Add($"{p}CacheDirectory is '{options.CacheDirectory}'; it must be an absolute path, outside the content root.");
        }

        ValidateCaFile(options, p, failures);
        if (options.StartupTimeout < TimeSpan.FromSeconds(1) || options.StartupTimeout > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{p}StartupTimeout is {options.StartupTimeout}; it must be from 00:00:01 to 00:05:00 (default 00:00:10).");
        }

        return Result(failures);
    }

    private static void ValidateUrl(DpkeyringOptions options, string p, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(options.Url))
        {
            failures.Add($"{p}Url is not set: give the dpkeyring server's base URL, for example https://keys.internal:8443.");
            return;
        }

        if (!Uri.TryCreate(options.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            failures.Add($"{p}Url is not an absolute http:// or https:// URL; give the dpkeyring server's base URL, for example https://keys.internal:8443.");
            return;
        }

        if (url.UserInfo.Length > 0)
        {
            failures.Add($"{p}Url contains a user name or password; remove it and put the node token in {p}TokenFile.");
        }

        if (url.Query.Length > 0 || url.Fragment.Length > 0)
        {
            failures.Add($"{p}Url has a query or fragment; give only the server's base URL, for example https://keys.internal:8443.");
        }

        if (url.Scheme == Uri.UriSchemeHttp && !options.AllowInsecureHttp && !IsLoopback(url))
        {
            failures.Add($"{p}Url is plain http:// to {url.Host}, which is not a loopback address: the ring carries master keys and would cross the network in clear text. Use https://, or set {p}AllowInsecureHttp to true if the network is trusted.");
        }
    }

    private static bool IsLoopback(Uri url) =>
        url.IsLoopback || (IPAddress.TryParse(url.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    private static void ValidateToken(DpkeyringOptions options, string p, List<string> failures)
    {
        bool hasFile = !string.IsNullOrEmpty(options.TokenFile);
        bool hasToken = !string.IsNullOrEmpty(options.Token);
        if (hasFile && hasToken)
        {
            failures.Add($"both {p}TokenFile and {p}Token are set; set one ({p}TokenFile is preferred).");
            return;
        }

        if (!hasFile && !hasToken)
        {
            failures.Add($"no node token: set {p}TokenFile to a file holding one (preferred) or {p}Token. Create one with 'dpkeyring token create --role node --name NODE'.");
            return;
        }

        if (hasToken)
        {
            if (BearerToken.TryParse(options.Token!, out string? problem) is null)
            {
                failures.Add($"{p}Token is not a token: {problem}.");
            }

            return;
        }

        string text;
        try
        {
            text = File.ReadAllText(options.TokenFile!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            failures.Add($"{p}TokenFile '{options.TokenFile}' cannot be read: {ex.Message}");
            return;
        }

        if (BearerToken.TryParse(text, out string? fileProblem) is null)
        {
            failures.Add($"{p}TokenFile '{options.TokenFile}' does not hold a token: {fileProblem}.");
        }
    }

    private static void ValidateCaFile(DpkeyringOptions options, string p, List<string> failures)
    {
        if (string.IsNullOrEmpty(options.CaCertificateFile))
        {
            return;
        }

        if (options.Url is { } u && u.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            failures.Add($"{p}CaCertificateFile is set but {p}Url is plain http://; a CA is only used for https://.");
        }

        try
        {
            var certificates = new X509Certificate2Collection();
            certificates.ImportFromPemFile(options.CaCertificateFile);
            if (certificates.Count == 0)
            {
                failures.Add($"{p}CaCertificateFile '{options.CaCertificateFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            failures.Add($"{p}CaCertificateFile '{options.CaCertificateFile}' cannot be read as PEM certificates: {ex.Message}");
        }
    }

    private static ValidateOptionsResult Result(List<string> failures) =>
        failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures.Select(f => "dpkeyring: " + f));

    /// <summary>The server's ring names: 1 to 63 of a-z 0-9 . _ - starting with a letter or digit.</summary>
    private static bool IsRingName(string? ring) =>
        ring is { Length: > 0 and <= 63 }
        && (char.IsAsciiLetterLower(ring[0]) || char.IsAsciiDigit(ring[0]))
        && ring.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-');

    /// <summary>A character the server accepts in <c>X-Node-Id</c>: A-Z a-z 0-9 . _ : @ / -.</summary>
    internal static bool IsNodeIdChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '@' or '/' or '-';
}
