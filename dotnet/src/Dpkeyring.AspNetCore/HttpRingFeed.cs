using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Dpkeyring.AspNetCore;

/// <summary>
/// Reads the ring from the server's API: <c>GET /v1/rings/{ring}/keys</c> (XML, gzip, ETag),
/// long-polled with <c>?wait=</c> and <c>If-None-Match</c>. Every answer that is not a ring is a
/// <see cref="FeedException"/> saying what to do.
/// </summary>
internal sealed class HttpRingFeed : IRingFeed
{
    private readonly HttpClient _client;
    private readonly Uri _keysUri;
    private readonly string _ring;
    private readonly string _nodeId;
    private readonly string? _tokenFile;
    private readonly string _tokenFileSetting;
    private readonly string _settingPrefix;
    private readonly BearerToken? _token;
    private readonly TimeProvider _time;
    private readonly X509Certificate2Collection? _trustedCas;

    public HttpRingFeed(DpkeyringOptions options, string settingPrefix, TimeProvider time, ILogger logger)
    {
        _time = time;
        _ring = options.Ring;
        _nodeId = string.IsNullOrEmpty(options.NodeId) ? Environment.MachineName : options.NodeId;
        _tokenFile = string.IsNullOrEmpty(options.TokenFile) ? null : Path.GetFullPath(options.TokenFile);
        _settingPrefix = settingPrefix;
        _tokenFileSetting = settingPrefix + nameof(DpkeyringOptions.TokenFile);
        if (_tokenFile is null)
        {
            _token = BearerToken.TryParse(options.Token ?? string.Empty, out _);
        }
        else if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(_tokenFile) & UnixFileMode.OtherRead) != 0)
        {
            Log.TokenFileWorldReadable(logger, _tokenFile);
        }

        var baseUrl = options.Url!.TrimEnd('/');
        Description = baseUrl;
        _keysUri = new Uri($"{baseUrl}/v1/rings/{Uri.EscapeDataString(_ring)}/keys");
        StaleAfter = options.PollWait * 2;
        Cache = new LastKnownGoodCache(options.CacheDirectory!, _ring);

        var handler = new SocketsHttpHandler
        {
            AutomaticDecompression = DecompressionMethods.GZip,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        if (!string.IsNullOrEmpty(options.CaCertificateFile))
        {
            _trustedCas = new X509Certificate2Collection();
            _trustedCas.ImportFromPemFile(options.CaCertificateFile);
            handler.SslOptions.RemoteCertificateValidationCallback = ValidateWithPrivateCa;
        }

        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public string Description { get; }

    public TimeSpan? StaleAfter { get; }

    public LastKnownGoodCache? Cache { get; }

    public bool AppendOnly => false;

    public Task PauseAsync(TimeSpan? retryDelay, CancellationToken cancellationToken) =>
        retryDelay is { } delay ? Task.Delay(delay, _time, cancellationToken) : Task.CompletedTask;

    public async Task<RingSnapshot?> FetchAsync(string? etag, TimeSpan? wait, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var token = ReadToken();
        var uri = wait is { } w && etag is not null
            ? new Uri(_keysUri, $"?wait={Math.Max(1, (int)Math.Ceiling(w.TotalSeconds)).ToString(CultureInfo.InvariantCulture)}s")
            : _keysUri;
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Reveal());
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/xml"));
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("gzip"));
        request.Headers.TryAddWithoutValidation("X-Node-Id", _nodeId);
        if (etag is not null)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", etag);
        }

        using var timeoutSource = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        try
        {
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            return await ReadAnswerAsync(response, etag, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Problem(FeedProblemKind.Unreachable, $"{Description} did not answer within {timeout.TotalSeconds:F0} s.");
        }
        catch (HttpRequestException ex)
        {
            var cause = ex.InnerException is System.Security.Authentication.AuthenticationException auth
                ? $"the TLS handshake failed ({auth.Message}{(auth.InnerException is null ? string.Empty : ": " + auth.InnerException.Message)}); set " + _settingPrefix + "CaCertificateFile for a private CA"
                : ex.Message;
            throw Problem(FeedProblemKind.Unreachable, $"cannot reach {Description}: {cause}.", ex);
        }
        catch (IOException ex)
        {
            throw Problem(FeedProblemKind.Unreachable, $"the connection to {Description} broke while reading the ring ({ex.Message}).", ex);
        }
    }

    public void Dispose() => _client.Dispose();

    private async Task<RingSnapshot?> ReadAnswerAsync(HttpResponseMessage response, string? etag, CancellationToken cancellationToken)
    {
        switch (response.StatusCode)
        {
            case HttpStatusCode.OK:
                break;
            case HttpStatusCode.NotModified when etag is not null:
                return null;
            case HttpStatusCode.Unauthorized:
                throw Problem(FeedProblemKind.TokenRefused, "the server refused the node token (401): it is unknown or was revoked. Create one with 'dpkeyring token create --role node --name NODE' and put it in " + _tokenFileSetting + ".");
            case HttpStatusCode.Forbidden:
                throw Problem(FeedProblemKind.TokenRefused, $"the node token may not read ring '{_ring}' (403). Use a node token granted this ring ('dpkeyring token create --role node --ring {_ring}').");
            case HttpStatusCode.NotFound when await ErrorCodeAsync(response, cancellationToken).ConfigureAwait(false) == "ring_not_found":
                throw Problem(FeedProblemKind.RingNotFound, $"the server does not serve ring '{_ring}' (404). Check {_settingPrefix}Ring, or add the ring to the server (--ring).");
            case HttpStatusCode.TooManyRequests:
            case >= HttpStatusCode.InternalServerError:
                throw Problem(FeedProblemKind.Unreachable, $"{Description} answered {(int)response.StatusCode} {await ErrorMessageAsync(response, cancellationToken).ConfigureAwait(false)}".TrimEnd() + ".");
            case >= HttpStatusCode.MultipleChoices and < HttpStatusCode.BadRequest:
                throw Problem(FeedProblemKind.BadAnswer, $"{_keysUri} answered a redirect ({(int)response.StatusCode}{(response.Headers.Location is { } to ? " to " + Printable(to.ToString()) : string.Empty)}). Set {_settingPrefix}Url to the server's own address.");
            default:
                throw Problem(FeedProblemKind.BadAnswer, $"{_keysUri} answered {(int)response.StatusCode}, not a key ring. Is {_settingPrefix}Url the dpkeyring server's base URL?");
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is not ("application/xml" or "text/xml"))
        {
            throw Problem(FeedProblemKind.BadAnswer, $"{_keysUri} answered 200 with {mediaType ?? "no content type"}, not a key ring (a proxy or login page in the way?). Check {_settingPrefix}Url and any proxy between the node and the server.");
        }

        byte[] document = await ReadCappedAsync(response.Content, cancellationToken).ConfigureAwait(false);
        List<System.Xml.Linq.XElement> elements;
        try
        {
            elements = RingSnapshot.ParseRepository(document);
        }
        catch (RingFormatException ex)
        {
            throw Problem(FeedProblemKind.BadAnswer, $"the ring {_keysUri} answered cannot be used: {ex.Message}.", ex);
        }

        // Every dpkeyring answer carries both. Without the ETag the node could not long-poll (each
        // request would be answered at once); without the version it could not refuse an older one.
        var newTag = response.Headers.ETag?.ToString();
        var version = RingVersion(response, newTag);
        if (newTag is null || version is null)
        {
            throw Problem(FeedProblemKind.BadAnswer, $"{_keysUri} answered a ring without {(newTag is null ? "an ETag" : "a ring version")}, which every dpkeyring server sends: a proxy in the way drops or changes it. Let ETag and X-Ring-Version through, or point {_settingPrefix}Url at the server itself.");
        }

        return new RingSnapshot(elements, Description, newTag, version, document);
    }

    private async Task<byte[]> ReadCappedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > RingSnapshot.MaxDocumentBytes)
        {
            throw TooLarge();
        }

        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > RingSnapshot.MaxDocumentBytes)
                {
                    throw TooLarge();
                }

                buffer.Write(chunk, 0, read);
            }

            return buffer.ToArray();
        }
    }

    private FeedException TooLarge() =>
        Problem(FeedProblemKind.BadAnswer, $"the answer of {_keysUri} is larger than {RingSnapshot.MaxDocumentBytes / 1024 / 1024} MiB, more than any key ring; it was not read.");

    private static long? RingVersion(HttpResponseMessage response, string? etag)
    {
        if (response.Headers.TryGetValues("X-Ring-Version", out var values)
            && long.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out long version))
        {
            return version;
        }

        // ETags are "7", "7.gz": the digits before the first dot.
        var digits = etag?.Trim('W', '/', '"').Split('.')[0];
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out version) ? version : null;
    }

    private static async Task<string?> ErrorCodeAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        (await ErrorBodyAsync(response, cancellationToken).ConfigureAwait(false)).Code;

    private static async Task<string> ErrorMessageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var (code, message) = await ErrorBodyAsync(response, cancellationToken).ConfigureAwait(false);
        return code is null ? string.Empty : $"{code}: {message}";
    }

    /// <summary>The server's JSON error (<c>{"error", "code"}</c>), read from at most 4 KiB; nulls for anything else.</summary>
    private static async Task<(string? Code, string? Message)> ErrorBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json")
        {
            return (null, null);
        }

        try
        {
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[4096];
            int length = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            using var json = JsonDocument.Parse(buffer.AsMemory(0, length));
            string? code = json.RootElement.TryGetProperty("code", out var c) ? c.GetString() : null;
            string? message = json.RootElement.TryGetProperty("error", out var e) ? e.GetString() : null;
            return (code is null ? null : Printable(code), message is null ? null : Printable(message));
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }

    /// <summary>Text from the server for a log line: at most 300 characters, control characters replaced.</summary>
    private static string Printable(string text)
    {
        var chars = text.AsSpan(0, Math.Min(text.Length, 300)).ToArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i]))
            {
                chars[i] = '?';
            }
        }

        return new string(chars);
    }

    private BearerToken ReadToken()
    {
        if (_token is not null)
        {
            return _token;
        }

        string text;
        try
        {
            text = File.ReadAllText(_tokenFile!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Problem(FeedProblemKind.TokenRefused, $"the token file {_tokenFile} ({_tokenFileSetting}) cannot be read: {ex.Message}", ex);
        }

        return BearerToken.TryParse(text, out string? problem)
            ?? throw Problem(FeedProblemKind.TokenRefused, $"the token file {_tokenFile} ({_tokenFileSetting}) does not hold a token: {problem}.");
    }

    private bool ValidateWithPrivateCa(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_trustedCas!);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")); // serverAuth
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = new X509Certificate2(certificate);
        return custom.Build(leaf);
    }

    private static FeedException Problem(FeedProblemKind kind, string message, Exception? inner = null) =>
        new(new FeedProblem(kind, message), inner);
}
