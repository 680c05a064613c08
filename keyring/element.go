package keyring

import (
	"fmt"
	"time"
)

// ElementName returns the friendly name ASP.NET Core's XmlKeyManager gives an element, which is
// also its file name without ".xml": "key-{id}" for a key, "revocation-{id}" for the revocation
// of one key and "revocation-{yyyyMMddTHHmmssFFFFFFFZ}" (UTC) for a revocation of all keys
// created before a date. Elements of any other kind get an error wrapping [ErrMalformedKey] or
// [ErrMalformedRevocation].
func ElementName(element []byte) (string, error) {
	n, err := parseNode(element)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	switch n.name.Local {
	case "key":
		s, _ := n.attr("id")
		id, err := ParseKeyID(s)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMalformedKey, err)
		}
		return "key-" + id.String(), nil
	case "revocation":
		k := n.element("key")
		if k == nil {
			return "", fmt.Errorf("%w: no key element", ErrMalformedRevocation)
		}
		s, _ := k.attr("id")
		if s == "*" {
			d := n.element("revocationDate")
			if d == nil {
				return "", fmt.Errorf("%w: no revocationDate", ErrMalformedRevocation)
			}
			t, err := ParseXMLDate(d.value())
			if err != nil {
				return "", fmt.Errorf("%w: %w", ErrMalformedRevocation, err)
			}
			return RevokeAllName(t), nil
		}
		id, err := ParseKeyID(s)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMalformedRevocation, err)
		}
		return "revocation-" + id.String(), nil
	}
	return "", fmt.Errorf("%w: unexpected element <%s>", ErrMalformedKey, n.name.Local)
}

// RevokeAllName returns the friendly name of a revoke-all element:
// "revocation-" + date.UtcDateTime.ToString("yyyyMMddTHHmmssFFFFFFFZ").
func RevokeAllName(date time.Time) string {
	u := date.UTC()
	frac := fmt.Sprintf("%07d", u.Nanosecond()/100)
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return "revocation-" + u.Format("20060102T150405") + frac + "Z"
}
