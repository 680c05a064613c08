namespace Dpkeyring.AspNetCore;

/// <summary>
/// The node token. It lives in this one type, whose <see cref="ToString"/> says <c>***</c>, so
/// that no log, exception message or metric can carry it by accident.
/// </summary>
internal sealed class BearerToken
{
    private readonly string _value;

    private BearerToken(string value) => _value = value;

    /// <summary>The value for the <c>Authorization: Bearer</c> header, and nothing else.</summary>
    public string Reveal() => _value;

    /// <inheritdoc />
    public override string ToString() => "***";

    /// <summary>
    /// Reads a token from text as it comes from a file or a setting: one final newline
    /// (<c>\n</c> or <c>\r\n</c>) is ignored. Returns the reason when the text cannot be a token;
    /// the reason never quotes the text.
    /// </summary>
    public static BearerToken? TryParse(string text, out string? problem)
    {
        if (text.EndsWith("\r\n", StringComparison.Ordinal))
        {
            text = text[..^2];
        }
        else if (text.EndsWith('\n'))
        {
            text = text[..^1];
        }

        if (text.Length == 0)
        {
            problem = "it is empty";
            return null;
        }

        if (text.Length > 4096)
        {
            problem = "it is longer than 4096 characters";
            return null;
        }

        foreach (char c in text)
        {
            // RFC 6750 b64token characters: anything else cannot be sent as a bearer token.
            bool ok = c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9')
                or '-' or '.' or '_' or '~' or '+' or '/' or '=';
            if (!ok)
            {
                problem = "it contains a character a bearer token cannot have (white space, a second line or a control character?)";
                return null;
            }
        }

        problem = null;
        return new BearerToken(text);
    }
}
