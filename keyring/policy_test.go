package keyring_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

const day = 24 * time.Hour

func TestDefaultPolicy(t *testing.T) {
	want := keyring.Policy{Lifetime: 90 * day, LeadTime: 2 * day}
	if diff := cmp.Diff(want, keyring.DefaultPolicy()); diff != "" {
		t.Errorf("DefaultPolicy mismatch (-want +got):\n%s", diff)
	}
	if err := keyring.DefaultPolicy().Validate(); err != nil {
		t.Errorf("DefaultPolicy().Validate() = %v", err)
	}
	if got, want := keyring.DefaultPolicy().SuccessorWindow(), 96*time.Hour; got != want {
		t.Errorf("SuccessorWindow = %s, want %s", got, want)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    keyring.Policy
		ok   bool
	}{
		{"default", keyring.DefaultPolicy(), true},
		{"minimum lifetime", keyring.Policy{Lifetime: 7 * day, LeadTime: 2 * day}, true},
		{"lifetime below 7 days", keyring.Policy{Lifetime: 7*day - time.Nanosecond, LeadTime: 2 * day}, false},
		{"zero policy", keyring.Policy{}, false},
		{"negative lifetime", keyring.Policy{Lifetime: -90 * day, LeadTime: 2 * day}, false},
		{"minimum lead time", keyring.Policy{Lifetime: 90 * day, LeadTime: 48 * time.Hour}, true},
		{"lead time below 48h", keyring.Policy{Lifetime: 90 * day, LeadTime: 48*time.Hour - time.Nanosecond}, false},
		{"long lead time", keyring.Policy{Lifetime: 90 * day, LeadTime: 30 * day}, true},
		{"lead time plus a day just under lifetime", keyring.Policy{Lifetime: 7 * day, LeadTime: 6*day - time.Nanosecond}, true},
		{"lead time plus a day equal to lifetime", keyring.Policy{Lifetime: 7 * day, LeadTime: 6 * day}, false},
		{"lead time equal to lifetime", keyring.Policy{Lifetime: 10 * day, LeadTime: 10 * day}, false},
		{"lead time longer than lifetime", keyring.Policy{Lifetime: 10 * day, LeadTime: 20 * day}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, keyring.ErrInvalidPolicy) {
				t.Errorf("Validate() = %v, want ErrInvalidPolicy", err)
			}
		})
	}
}

// polDecision is the comparable part of a Decision.
type polDecision struct {
	Due                                      bool
	Created, Activation, Expiration, NextDue string
	Current, CoveredUntil                    string
}

func polFmt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.9999999Z")
}

func TestDecide(t *testing.T) {
	const now = "2016-02-01 00:00:00Z"
	long := keyring.Policy{Lifetime: 90 * day, LeadTime: 10 * day}
	tests := []struct {
		name   string
		policy keyring.Policy
		keys   []polSpec
		revs   []keyring.Revocation
		want   polDecision
	}{
		{
			name: "empty ring: immediate key",
			want: polDecision{Due: true, Created: now, Activation: now, Expiration: "2016-05-01 00:00:00Z", CoveredUntil: now},
		},
		{
			name: "only a revoked key: immediate key",
			keys: []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-04-01 00:00:00Z", revoked: true}},
			want: polDecision{Due: true, Created: now, Activation: now, Expiration: "2016-05-01 00:00:00Z", CoveredUntil: now},
		},
		{
			name: "only an expired key: immediate key",
			keys: []polSpec{{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-01-30 00:00:00Z"}},
			want: polDecision{Due: true, Created: now, Activation: now, Expiration: "2016-05-01 00:00:00Z", CoveredUntil: now},
		},
		{
			name: "only an unreadable key: immediate key",
			keys: []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-04-01 00:00:00Z", broken: true}},
			want: polDecision{Due: true, Created: now, Activation: now, Expiration: "2016-05-01 00:00:00Z", CoveredUntil: now},
		},
		{
			name: "only a key activating later than the skew: immediate key",
			keys: []polSpec{{name: "k", activation: "2016-02-01 01:00:00Z", expires: "2016-05-01 00:00:00Z"}},
			want: polDecision{Due: true, Created: now, Activation: now, Expiration: "2016-05-01 00:00:00Z", CoveredUntil: now},
		},
		{
			// The revoked key activating within the skew is the preferred key: the new key must
			// activate after it to win.
			name: "revoked key inside the skew: immediate key just after it",
			keys: []polSpec{{name: "k", activation: "2016-02-01 00:03:00Z", expires: "2016-05-01 00:00:00Z", revoked: true}},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-01 00:03:00.0000001Z", Expiration: "2016-05-01 00:03:00.0000001Z", CoveredUntil: now},
		},
		{
			name: "default far from expiry: not due",
			keys: []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-03-31 00:00:00Z"}},
			want: polDecision{NextDue: "2016-03-27 00:00:00Z", Current: "k", CoveredUntil: "2016-03-31 00:00:00Z"},
		},
		{
			name: "default expires in 96h: successor due",
			keys: []polSpec{{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-05 00:00:00Z"}},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-05 00:00:00Z", Expiration: "2016-05-05 00:00:00Z", Current: "k", CoveredUntil: "2016-02-05 00:00:00Z"},
		},
		{
			name: "default expires in 96h and 1s: not due",
			keys: []polSpec{{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-05 00:00:01Z"}},
			want: polDecision{NextDue: "2016-02-01 00:00:01Z", Current: "k", CoveredUntil: "2016-02-05 00:00:01Z"},
		},
		{
			name: "default expires in 1h: successor due at its expiration",
			keys: []polSpec{{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-01 01:00:00Z"}},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-01 01:00:00Z", Expiration: "2016-05-01 01:00:00Z", Current: "k", CoveredUntil: "2016-02-01 01:00:00Z"},
		},
		{
			name:   "long lead time: due 11 days ahead",
			policy: long,
			keys:   []polSpec{{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-12 00:00:00Z"}},
			want:   polDecision{Due: true, Created: now, Activation: "2016-02-12 00:00:00Z", Expiration: "2016-05-12 00:00:00Z", Current: "k", CoveredUntil: "2016-02-12 00:00:00Z"},
		},
		{
			name:   "long lead time: not due 12 days ahead",
			policy: long,
			keys:   []polSpec{{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-13 00:00:00Z"}},
			want:   polDecision{NextDue: "2016-02-02 00:00:00Z", Current: "k", CoveredUntil: "2016-02-13 00:00:00Z"},
		},
		{
			name: "successor already published: next due before the successor expires",
			keys: []polSpec{
				{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-03 00:00:00Z"},
				{name: "s", activation: "2016-02-03 00:00:00Z", expires: "2016-05-03 00:00:00Z"},
			},
			want: polDecision{NextDue: "2016-04-29 00:00:00Z", Current: "k", CoveredUntil: "2016-05-03 00:00:00Z"},
		},
		{
			name: "revoked successor: new successor just after it",
			keys: []polSpec{
				{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-03 00:00:00Z"},
				{name: "s", activation: "2016-02-03 00:00:00Z", expires: "2016-05-03 00:00:00Z", revoked: true},
			},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-03 00:00:00.0000001Z", Expiration: "2016-05-03 00:00:00.0000001Z", Current: "k", CoveredUntil: "2016-02-02 23:55:00Z"},
		},
		{
			name: "unreadable successor: new successor just after it",
			keys: []polSpec{
				{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-03 00:00:00Z"},
				{name: "s", activation: "2016-02-03 00:00:00Z", expires: "2016-05-03 00:00:00Z", broken: true},
			},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-03 00:00:00.0000001Z", Expiration: "2016-05-03 00:00:00.0000001Z", Current: "k", CoveredUntil: "2016-02-02 23:55:00Z"},
		},
		{
			name: "successor activating after a gap: new key covers the gap",
			keys: []polSpec{
				{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-02-03 00:00:00Z"},
				{name: "s", activation: "2016-02-10 00:00:00Z", expires: "2016-05-10 00:00:00Z"},
			},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-03 00:00:00Z", Expiration: "2016-05-03 00:00:00Z", Current: "k", CoveredUntil: "2016-02-03 00:00:00Z"},
		},
		{
			// A revoked key that activates long before the default expires takes over the
			// preference 5 minutes before its activation and leaves the ring without a default.
			name: "revoked future key blocks the default",
			keys: []polSpec{
				{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-04-01 00:00:00Z"},
				{name: "r", activation: "2016-02-04 00:00:00Z", expires: "2016-05-01 00:00:00Z", revoked: true},
			},
			want: polDecision{Due: true, Created: now, Activation: "2016-02-04 00:00:00.0000001Z", Expiration: "2016-05-04 00:00:00.0000001Z", Current: "k", CoveredUntil: "2016-02-03 23:55:00Z"},
		},
		{
			name: "revoked future key far ahead: not due yet",
			keys: []polSpec{
				{name: "k", activation: "2015-11-01 00:00:00Z", expires: "2016-04-01 00:00:00Z"},
				{name: "r", activation: "2016-03-01 00:00:00Z", expires: "2016-05-01 00:00:00Z", revoked: true},
			},
			want: polDecision{NextDue: "2016-02-25 23:55:00Z", Current: "k", CoveredUntil: "2016-02-29 23:55:00Z"},
		},
		{
			name: "revoke-all of every key: immediate key",
			keys: []polSpec{{name: "k", created: "2015-11-01 00:00:00Z", activation: "2015-11-01 00:00:00Z", expires: "2016-04-01 00:00:00Z"}},
			revs: []keyring.Revocation{{Date: polTime(t, "2016-01-15 00:00:00Z"), All: true}},
			want: polDecision{Due: true, Created: now, Activation: now, Expiration: "2016-05-01 00:00:00Z", CoveredUntil: now},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			if p == (keyring.Policy{}) {
				p = keyring.DefaultPolicy()
			}
			r, names := mustPolRing(t, tc.keys, tc.revs...)
			d := p.Decide(r, polTime(t, now))
			got := polDecision{
				Due: d.Due, Created: polFmt(d.Created), Activation: polFmt(d.Activation), Expiration: polFmt(d.Expiration),
				NextDue: polFmt(d.NextDue), Current: polName(names, d.Current), CoveredUntil: polFmt(d.CoveredUntil),
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide mismatch (-want +got):\n%s\nreason: %s", diff, d.Reason)
			}
			if d.Reason == "" {
				t.Error("Decide returned no reason")
			}
			if !d.Due {
				// NextDue is exact: due then, not due a tick before.
				if !p.Decide(r, d.NextDue).Due {
					t.Errorf("not due at NextDue %s", polFmt(d.NextDue))
				}
				if before := d.NextDue.Add(-100 * time.Nanosecond); p.Decide(r, before).Due {
					t.Errorf("already due at %s, before NextDue", polFmt(before))
				}
				return
			}
			// Applying the decision must fix the ring: not due any more, and a default key at
			// every instant until well after the new key activates.
			after := polApply(t, r, d)
			d2 := p.Decide(after, polTime(t, now))
			if d2.Due {
				t.Errorf("still due after applying the decision: %s", d2.Reason)
			}
			if !d2.CoveredUntil.After(d.Activation.Add(p.Lifetime - time.Second)) {
				t.Errorf("after applying, covered until %s, want about %s", polFmt(d2.CoveredUntil), polFmt(d.Expiration))
			}
		})
	}
}

func TestImmediate(t *testing.T) {
	now := polTime(t, "2016-02-01 12:34:56Z")
	d := keyring.Policy{Lifetime: 30 * day, LeadTime: 2 * day}.Immediate(now)
	want := polDecision{Due: true, Created: "2016-02-01 12:34:56Z", Activation: "2016-02-01 12:34:56Z", Expiration: "2016-03-02 12:34:56Z"}
	got := polDecision{Due: d.Due, Created: polFmt(d.Created), Activation: polFmt(d.Activation), Expiration: polFmt(d.Expiration), NextDue: polFmt(d.NextDue)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Immediate mismatch (-want +got):\n%s", diff)
	}

	// Applied to a ring with a healthy default key, the emergency key becomes the default.
	r, _ := mustPolRing(t, []polSpec{{name: "k", activation: "2016-01-01 00:00:00Z", expires: "2016-04-01 00:00:00Z"}})
	after := polApply(t, r, d)
	def, err := after.DefaultKey(now)
	if err != nil {
		t.Fatal(err)
	}
	if !def.Activation.Equal(now) {
		t.Errorf("default after the emergency key activates at %s, want the emergency key", polFmt(def.Activation))
	}
}

// polApply returns r plus a key with d's dates.
func polApply(tb testing.TB, r *keyring.Ring, d keyring.Decision) *keyring.Ring {
	tb.Helper()
	id, err := keyring.NewKeyID()
	if err != nil {
		tb.Fatal(err)
	}
	keys := append(r.Keys(), polNewKey(tb, id, d.Created, d.Activation, d.Expiration))
	out, err := keyring.NewRing(keys, r.Revocations(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestDecideTimeline is the property the rotation policy exists for: a server that applies
// Decide at least every 24 h keeps a ring in which, at every instant, ASP.NET Core has a
// default key (ResolveDefaultKey never says ShouldGenerate) and no node would create a key of
// its own (NodeWouldGenerateKey is false); every successor is published at least
// max(LeadTime, 72h) before it activates, and no key is created needlessly.
func TestDecideTimeline(t *testing.T) {
	start := polTime(t, "2024-01-01 00:00:00Z")
	policies := []keyring.Policy{
		keyring.DefaultPolicy(),
		{Lifetime: 7 * day, LeadTime: 2 * day},
		{Lifetime: 7 * day, LeadTime: 5 * day},
		{Lifetime: 30 * day, LeadTime: 10 * day},
		{Lifetime: 90 * day, LeadTime: 20 * day},
	}
	schedules := []struct {
		name   string
		offset time.Duration // first run after start
		every  time.Duration
	}{
		{"daily at midnight", 0, day},
		{"daily at 13:37", 13*time.Hour + 37*time.Minute, day},
		{"every 7h", 5 * time.Hour, 7 * time.Hour},
		{"every 24h minus 1s", time.Hour, day - time.Second},
	}
	const horizon = 400 * day
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			t.Fatalf("test policy %+v invalid: %v", p, err)
		}
		for _, s := range schedules {
			t.Run(fmt.Sprintf("lifetime=%s/lead=%s/%s", p.Lifetime, p.LeadTime, s.name), func(t *testing.T) {
				r, err := keyring.NewRing(nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				var runs []time.Time
				for at := start.Add(s.offset); at.Before(start.Add(horizon)); at = at.Add(s.every) {
					runs = append(runs, at)
				}
				created := 0
				for i, at := range runs {
					d := p.Decide(r, at)
					if d.Due {
						r = polApply(t, r, d)
						created++
						if i > 0 {
							if lead := d.Activation.Sub(d.Created); lead < max(p.LeadTime, 72*time.Hour) {
								t.Errorf("run %s: successor published %s before activation, want at least %s", polFmt(at), lead, max(p.LeadTime, 72*time.Hour))
							}
						}
						if again := p.Decide(r, at); again.Due {
							t.Fatalf("run %s: still due after applying: %s", polFmt(at), again.Reason)
						}
					} else if !d.NextDue.After(at) {
						t.Errorf("run %s: not due but NextDue %s is not in the future", polFmt(at), polFmt(d.NextDue))
					}
					// Check every instant until the next run: hourly samples plus every key
					// boundary (activation minus skew, expiration) and the instants around it.
					for _, τ := range polSamples(r, at, at.Add(s.every)) {
						if res := r.ResolveDefaultKey(τ); res.ShouldGenerate {
							t.Fatalf("at %s (after run %s): no default key", polFmt(τ), polFmt(at))
						}
						if r.NodeWouldGenerateKey(τ) {
							t.Fatalf("at %s (after run %s): an ASP.NET Core node would generate a key", polFmt(τ), polFmt(at))
						}
					}
				}
				// No needless keys: one immediate key, then one per rotation.
				elapsed := runs[len(runs)-1].Sub(runs[0])
				wantMax := 2 + int(elapsed/p.Lifetime)
				if created < 1+int(elapsed/p.Lifetime) || created > wantMax {
					t.Errorf("created %d keys over %s, want %d or %d", created, elapsed, wantMax-1, wantMax)
				}
			})
		}
	}
}

// polSamples returns instants in [from, to): hourly, plus every key boundary and one tick and
// one second on either side of it.
func polSamples(r *keyring.Ring, from, to time.Time) []time.Time {
	var out []time.Time
	for τ := from; τ.Before(to); τ = τ.Add(time.Hour) {
		out = append(out, τ)
	}
	for _, k := range r.Keys() {
		for _, b := range []time.Time{k.Activation.Add(-keyring.MaxServerClockSkew), k.Activation, k.Expiration, k.Expiration.Add(-72 * time.Hour)} {
			for _, d := range []time.Duration{-time.Second, -100, 0, 100, time.Second} {
				if τ := b.Add(d); !τ.Before(from) && τ.Before(to) {
					out = append(out, τ)
				}
			}
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}
