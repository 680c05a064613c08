package keyring

import (
	"fmt"
	"strconv"
	"strings"
)

// Cookie presets.
const (
	// UmbracoCookieName is the default name of the Umbraco backoffice cookie
	// (SecuritySettings.AuthCookieName).
	UmbracoCookieName = "UMB_UCONTEXT"
	// UmbracoScheme is the authentication scheme of the Umbraco backoffice
	// (Constants.Security.BackOfficeAuthenticationType).
	UmbracoScheme = "UmbracoBackOffice"
	// CookieAuthenticationPurpose is the first purpose of the cookie-authentication protector,
	// fixed for interop (PostConfigureCookieAuthenticationOptions).
	CookieAuthenticationPurpose = "Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware"
	// DefaultChunkSize is ChunkingCookieManager.DefaultChunkSize, the longest Set-Cookie header
	// text (without the header name) ASP.NET Core writes before it chunks a cookie.
	DefaultChunkSize = 4050

	chunkCountPrefix = "chunks-"
	chunkKeySuffix   = "C"
	// maxCookieChunks bounds the chunk count ReassembleCookie accepts. ASP.NET Core has no
	// limit, but no browser sends more than about 180 cookies per site, and servers reject
	// request headers far shorter than 256 chunks of 4 KB.
	maxCookieChunks = 256
	// cookieTemplateSuffix is what SetCookieHeaderValue.ToString appends to "name=" for the
	// cookie-authentication defaults of a session cookie over HTTP: path "/", SameSite=Lax,
	// HttpOnly, no domain, no expiry, not Secure.
	cookieTemplateSuffix = "=; path=/; samesite=lax; httponly"
)

// CookieName returns the default cookie name of ASP.NET Core cookie authentication for a scheme:
// ".AspNetCore." + Uri.EscapeDataString(scheme), such as ".AspNetCore.Cookies" or
// ".AspNetCore.Identity.Application".
func CookieName(scheme string) string {
	return ".AspNetCore." + escapeDataString(scheme)
}

// CookiePurposes returns the purposes of the protector cookie authentication uses for a scheme,
// without the application discriminator (which, when set, comes first):
// [CookieAuthenticationPurpose, scheme, "v2"].
func CookiePurposes(scheme string) []string {
	return []string{CookieAuthenticationPurpose, scheme, "v2"}
}

// escapeDataString is .NET's Uri.EscapeDataString: every byte except the RFC 3986 unreserved
// characters (A–Z a–z 0–9 - . _ ~) is written as %XX with upper-case hex digits.
func escapeDataString(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// unescapeDataString approximates .NET's Uri.UnescapeDataString: it returns s unchanged unless it
// contains '%', and decodes each %XX with two hex digits, leaving any other '%' as it is. (.NET
// also leaves escapes that do not form valid UTF-8 undecoded; cookie values are base64url, which
// never contains '%', so this matters only for hand-edited input.)
func unescapeDataString(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// CookiePair is one cookie name and value.
type CookiePair struct {
	Name  string
	Value string
}

// ParseCookieHeader splits the value of a Cookie request header into name/value pairs, in order,
// as ASP.NET Core's CookieHeaderParserShared does: pairs are separated by ';' or ',', names are
// HTTP tokens, a value is a run of cookie-octets, optionally in double quotes (which, as in
// ASP.NET Core, stay part of the value), and malformed stretches are skipped one character at a
// time. Values are percent-unescaped (only when they contain '%'). Duplicate names are all
// returned; [LookupCookies] resolves them as ASP.NET Core does.
func ParseCookieHeader(header string) []CookiePair {
	var out []CookiePair
	index := 0
	for index < len(header) {
		name, value, next, ok := parseCookieItem(header, index)
		if !ok {
			index++
			continue
		}
		if name != "" {
			out = append(out, CookiePair{Name: name, Value: unescapeDataString(value)})
		}
		index = next
	}
	return out
}

// parseCookieItem is CookieHeaderParserShared.TryParseValue with supportsMultipleValues: it skips
// leading separators, reads one name=value and requires a separator or the end after it. An empty
// name with ok means only separators or white space were left.
func parseCookieItem(s string, index int) (name, value string, next int, ok bool) {
	cur, _ := skipSeparators(s, index)
	if cur == len(s) {
		return "", "", cur, true
	}
	n := tokenLength(s, cur)
	if n == 0 {
		return "", "", 0, false
	}
	name = s[cur : cur+n]
	cur += n
	if cur >= len(s) || s[cur] != '=' {
		return "", "", 0, false
	}
	cur++
	value, cur = cookieValue(s, cur)
	cur, sep := skipSeparators(s, cur)
	if !sep && cur < len(s) {
		return "", "", 0, false
	}
	return name, value, cur, true
}

// skipSeparators skips white space, then any run of ',' and ';' with white space around them.
func skipSeparators(s string, i int) (int, bool) {
	i = skipWhiteSpace(s, i)
	if i == len(s) || (s[i] != ',' && s[i] != ';') {
		return i, false
	}
	for i < len(s) && (s[i] == ',' || s[i] == ';') {
		i = skipWhiteSpace(s, i+1)
	}
	return i, true
}

func skipWhiteSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// tokenLength is HttpRuleParser.GetTokenLength: the length of the run of RFC 7230 tchars at i.
func tokenLength(s string, i int) int {
	j := i
	for j < len(s) && isTokenChar(s[j]) {
		j++
	}
	return j - i
}

func isTokenChar(c byte) bool {
	if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isCookieOctet reports %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
func isCookieOctet(c byte) bool {
	return c == 0x21 || 0x23 <= c && c <= 0x2b || 0x2d <= c && c <= 0x3a ||
		0x3c <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e
}

// cookieValue is CookieHeaderParserShared.GetCookieValue: cookie-octets, or cookie-octets in
// double quotes (kept in the value); a missing closing quote gives an empty value.
func cookieValue(s string, i int) (string, int) {
	start := i
	quoted := i < len(s) && s[i] == '"'
	if quoted {
		i++
	}
	for i < len(s) && isCookieOctet(s[i]) {
		i++
	}
	if quoted {
		if i == len(s) || s[i] != '"' {
			return "", i
		}
		i++
	}
	return s[start:i], i
}

// LookupCookies returns a lookup over pairs that behaves like ASP.NET Core's request cookie
// collection: names match case-insensitively (ASCII) and the last of several equal names wins.
func LookupCookies(pairs []CookiePair) func(name string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(pairs) - 1; i >= 0; i-- {
			if strings.EqualFold(pairs[i].Name, name) {
				return pairs[i].Value, true
			}
		}
		return "", false
	}
}

// ReassembleCookie returns the value of the cookie name as ChunkingCookieManager.GetRequestCookie
// reads it: if the value is "chunks-N" (N a positive decimal number without sign or white space),
// the concatenation of the cookies nameC1 … nameCN; otherwise the value itself.
//
// Where ASP.NET Core silently returns the "chunks-N" text when a chunk is missing or empty (so
// the cookie then fails to decrypt), ReassembleCookie returns an error wrapping
// [ErrMalformedCookie] that names the missing chunk, as ThrowForPartialCookies does. It also
// returns such an error when the cookie is absent or empty, or N is above 256.
func ReassembleCookie(name string, lookup func(name string) (string, bool)) (string, error) {
	v, ok := lookup(name)
	if !ok {
		return "", fmt.Errorf("%w: no cookie named %q", ErrMalformedCookie, name)
	}
	if v == "" {
		return "", fmt.Errorf("%w: cookie %q is empty", ErrMalformedCookie, name)
	}
	n := parseChunksCount(v)
	if n == 0 {
		return v, nil
	}
	if n > maxCookieChunks {
		return "", fmt.Errorf("%w: cookie %q claims %d chunks, more than %d", ErrMalformedCookie, name, n, maxCookieChunks)
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		chunkName := name + chunkKeySuffix + strconv.Itoa(i)
		c, ok := lookup(chunkName)
		if !ok || c == "" {
			return "", fmt.Errorf("%w: chunk %d of %d (%s) is missing or empty; a client size limit may have been exceeded",
				ErrMalformedCookie, i, n, chunkName)
		}
		b.WriteString(c)
	}
	return b.String(), nil
}

// parseChunksCount is ChunkingCookieManager.ParseChunksCount: N for "chunks-N" where N parses with
// int.TryParse(NumberStyles.None) (ASCII digits only, fitting an int32), else 0.
func parseChunksCount(v string) int {
	digits, ok := strings.CutPrefix(v, chunkCountPrefix)
	if !ok || digits == "" {
		return 0
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
		if n > 1<<31-1 {
			return 0
		}
	}
	return n
}

// ChunkCookie splits a cookie as ChunkingCookieManager.AppendResponseCookie does with chunk size
// chunkSize (0 means [DefaultChunkSize]): one pair when the value fits, else name=chunks-N
// followed by nameC1 … nameCN carrying consecutive slices of the value.
//
// AppendResponseCookie measures the Set-Cookie text of the cookie's options; ChunkCookie assumes
// the cookie-authentication defaults for a session cookie over HTTP ("name=; path=/;
// samesite=lax; httponly"). A persistent cookie (expires=…), a domain or Secure make .NET's
// chunks shorter. A chunkSize too small to hold any data (where .NET throws) is raised to the
// smallest that can.
func ChunkCookie(name, value string, chunkSize int) []CookiePair {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	template := len(name) + len(cookieTemplateSuffix)
	if value == "" || chunkSize > template+len(value) {
		return []CookiePair{{Name: name, Value: value}}
	}
	if chunkSize < template+10 {
		chunkSize = template + 10
	}
	per := chunkSize - template - 3
	n := (len(value) + per - 1) / per
	out := make([]CookiePair, 0, n+1)
	out = append(out, CookiePair{Name: name, Value: chunkCountPrefix + strconv.Itoa(n)})
	for i := 1; i <= n; i++ {
		end := min(i*per, len(value))
		out = append(out, CookiePair{Name: name + chunkKeySuffix + strconv.Itoa(i), Value: value[(i-1)*per : end]})
	}
	return out
}
