package keyring

import (
	"fmt"
	"strings"
	"time"
)

// ParseXMLDate parses an xsd:dateTime as .NET's XmlConvert.ToDateTimeOffset does for the dates
// in key and revocation elements: "yyyy-MM-ddTHH:mm:ss", an optional fraction, and "Z" or a
// "+hh:mm"/"-hh:mm" offset, with white space around it. Like .NET, it keeps 7 fractional digits
// (100 ns ticks) and rounds on the eighth. A value with no zone is read as UTC (.NET would use
// the reading node's local zone; dpkeyring always writes "Z").
func ParseXMLDate(s string) (time.Time, error) {
	t := strings.TrimSpace(s)
	var round time.Duration
	if i := strings.IndexByte(t, '.'); i >= 0 {
		j := i + 1
		for j < len(t) && t[j] >= '0' && t[j] <= '9' {
			j++
		}
		if j == i+1 {
			return time.Time{}, fmt.Errorf("keyring: invalid date %q: fractional digits expected", s)
		}
		if j-i-1 > 7 {
			if t[i+8] >= '5' {
				round = 100 * time.Nanosecond
			}
			t = t[:i+8] + t[j:]
		}
	}
	for _, l := range []string{"2006-01-02T15:04:05.9999999Z07:00", "2006-01-02T15:04:05.9999999"} {
		if v, err := time.Parse(l, t); err == nil {
			return v.Add(round), nil
		}
	}
	return time.Time{}, fmt.Errorf("keyring: invalid date %q", s)
}

// FormatXMLDate formats t as .NET's XmlConvert.ToString(DateTimeOffset) does for a UTC value:
// "yyyy-MM-ddTHH:mm:ss", the 7-digit tick fraction with trailing zeros removed (none when zero),
// and "Z". Sub-tick precision (below 100 ns) is truncated.
func FormatXMLDate(t time.Time) string {
	u := t.UTC().Truncate(100 * time.Nanosecond)
	return u.Format("2006-01-02T15:04:05.9999999Z07:00")
}
