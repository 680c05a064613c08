package keyring

import (
	"fmt"
	"slices"
	"time"
)

// Rotation limits and defaults.
const (
	// MinKeyLifetime is the shortest key lifetime ASP.NET Core accepts
	// (KeyManagementOptions.NewKeyLifetime throws below one week).
	MinKeyLifetime = 7 * 24 * time.Hour
	// DefaultKeyLifetime is ASP.NET Core's default NewKeyLifetime.
	DefaultKeyLifetime = 90 * 24 * time.Hour
	// MinLeadTime is the shortest lead time [Policy.Validate] accepts: [KeyPropagationWindow].
	//
	// Every ASP.NET Core node re-reads the key ring at least every [KeyRingRefreshPeriod] (24 h,
	// jittered down to 19.2 h) and may start protecting with a key [MaxServerClockSkew] before
	// its activation, so a key published less than 24 h 5 min before it activates can be used by
	// one node before another has loaded it (and that node cannot unprotect the payload). ASP.NET
	// Core itself never publishes a successor less than [KeyPropagationWindow] before it activates
	// (a node creates it on the first refresh within 72 h of the switch, and refreshes at most
	// 24 h apart), and it treats keys younger than that as not yet propagated. We require the same
	// 48 h.
	MinLeadTime = KeyPropagationWindow
	// DefaultLeadTime is the lead time of [DefaultPolicy].
	DefaultLeadTime = 2 * 24 * time.Hour
	// MaxDecideInterval is the longest time between two calls of [Policy.Decide] (with the new
	// key created when due) for which Decide guarantees that no ASP.NET Core node reading the ring
	// ever creates a key of its own.
	MaxDecideInterval = KeyRingRefreshPeriod

	// nodeGenerationWindow is KeyRingProvider's rule: a node creates a successor when the default
	// key expires within refresh period + propagation window of its refresh.
	nodeGenerationWindow = KeyRingRefreshPeriod + KeyPropagationWindow
	// tick is one .NET tick, the resolution of the dates in key XML.
	tick = 100 * time.Nanosecond
)

// Policy is a key rotation policy for a ring with a single writer (the dpkeyring server): ASP.NET
// Core nodes only read the ring and must never need to create keys themselves.
type Policy struct {
	// Lifetime is how long each new key is the default key: a key created by [Policy.Decide] or
	// [Policy.Immediate] expires Lifetime after its activation. (ASP.NET Core measures
	// NewKeyLifetime from creation instead; measuring from activation keeps every key in use for
	// the full Lifetime and keeps short lifetimes stable, see [Policy.Validate].)
	Lifetime time.Duration
	// LeadTime is the least time between publishing a successor and its activation, as long as
	// [Policy.Decide] runs at least every [MaxDecideInterval]. Decide publishes successors
	// [Policy.SuccessorWindow] before they activate, which is never less than LeadTime + 24 h.
	LeadTime time.Duration
}

// DefaultPolicy returns ASP.NET Core's defaults: keys live 90 days and successors are published
// at least 2 days (the propagation window) before they activate.
func DefaultPolicy() Policy {
	return Policy{Lifetime: DefaultKeyLifetime, LeadTime: DefaultLeadTime}
}

// Validate checks p against the limits: Lifetime at least [MinKeyLifetime] (7 days, as ASP.NET
// Core enforces), LeadTime at least [MinLeadTime] (2 days, see there why), and LeadTime +
// [MaxDecideInterval] shorter than Lifetime, so that a key's successor never falls due before
// the key itself has activated. It returns an error wrapping [ErrInvalidPolicy] otherwise.
func (p Policy) Validate() error {
	switch {
	case p.Lifetime < MinKeyLifetime:
		return fmt.Errorf("%w: key lifetime %s is shorter than the minimum %s", ErrInvalidPolicy, p.Lifetime, MinKeyLifetime)
	case p.LeadTime < MinLeadTime:
		return fmt.Errorf("%w: lead time %s is shorter than the minimum %s", ErrInvalidPolicy, p.LeadTime, MinLeadTime)
	case p.LeadTime+MaxDecideInterval >= p.Lifetime:
		return fmt.Errorf("%w: lead time %s plus %s must be shorter than the key lifetime %s",
			ErrInvalidPolicy, p.LeadTime, MaxDecideInterval, p.Lifetime)
	}
	return nil
}

// SuccessorWindow is how long before the ring would run out of a default key [Policy.Decide]
// makes a new key due: max(LeadTime, 72 h) + [MaxDecideInterval], 96 h for [DefaultPolicy].
//
// 72 h is [KeyRingRefreshPeriod] + [KeyPropagationWindow]: an ASP.NET Core node that refreshes
// while its default key expires within 72 h and sees no successor creates one itself. Decide
// may next run up to [MaxDecideInterval] later than the instant the key falls due, so the window
// adds that interval: a successor is then always published at least max(LeadTime, 72 h) before
// it activates.
func (p Policy) SuccessorWindow() time.Duration {
	return max(p.LeadTime, nodeGenerationWindow) + MaxDecideInterval
}

// Decision is the outcome of [Policy.Decide] and [Policy.Immediate].
type Decision struct {
	// Due is true when a new key must be created now, with the dates below.
	Due bool
	// Reason says in a sentence why a key is or is not due, for logs and operators.
	Reason string
	// Created, Activation and Expiration are the new key's dates when Due (zero otherwise).
	// Activation equals Created for an immediate key (the ring has no usable default key now, or
	// an emergency); otherwise it is the instant the ring would run out of a default key
	// (normally the current default's expiration), so the key takes over exactly then. In
	// either case, if a revoked or unusable key activating at or just after that instant would
	// be preferred, Activation is one tick (100 ns) after that key's activation, so the new key
	// outranks it. Expiration is Activation + Lifetime.
	Created, Activation, Expiration time.Time
	// NextDue is, when not Due, the earliest instant at which Decide will return Due if the ring
	// does not change; zero when Due.
	NextDue time.Time
	// Current is the default key at now ([Ring.ResolveDefaultKey]), or nil if there is none.
	Current *Key
	// CoveredUntil is the first instant at or after now at which the ring, as given, has no
	// default key (now itself when Current is nil). Keys taking over from one another extend it.
	CoveredUntil time.Time
}

// Decide says whether a new key must be created at now so that the ring always has a default
// key and every successor is published in time, and with which dates.
//
// The ring must have a default key usable now; if it has none, a key activating now is due (as
// an ASP.NET Core node would create). Otherwise Decide follows the default key over time (each
// key's expiration, later keys becoming the default MaxServerClockSkew before they activate,
// revoked or unusable keys blocking) to the first instant the ring would have no default key,
// and makes a key due once that instant is within [Policy.SuccessorWindow]: the new key
// activates then (just after a revoked or unusable key that would otherwise be chosen). Called
// at least every [MaxDecideInterval], Decide publishes every successor at least LeadTime, and
// at least 72 h, before it activates, and it keeps every ASP.NET Core node that reads the ring
// from ever creating a key itself ([Ring.NodeWouldGenerateKey] stays false), provided every key
// in the ring is the default for at least 72 h (true of every key Decide and Immediate create).
//
// p should be valid ([Policy.Validate]); Decide does not check it.
func (p Policy) Decide(r *Ring, now time.Time) Decision {
	d := Decision{Current: r.ResolveDefaultKey(now).Default}
	gap := r.firstGap(now)
	d.CoveredUntil = gap
	window := p.SuccessorWindow()
	if !gap.After(now) {
		d.Due = true
		d.Created = now
		d.Activation = r.takeoverActivation(now)
		d.Expiration = d.Activation.Add(p.Lifetime)
		if r.Len() == 0 {
			d.Reason = "the key ring is empty: a key activating now is due"
		} else {
			d.Reason = "the key ring has no usable default key (revoked, expired or unreadable): a key activating now is due"
		}
		d.Current = nil
		return d
	}
	if gap.Sub(now) <= window {
		d.Due = true
		d.Created = now
		d.Activation = r.takeoverActivation(gap)
		d.Expiration = d.Activation.Add(p.Lifetime)
		d.Reason = fmt.Sprintf("the key ring has no default key from %s, within %s: a successor activating then is due",
			FormatXMLDate(gap), window)
		return d
	}
	d.NextDue = gap.Add(-window)
	d.Reason = fmt.Sprintf("the key ring has a default key until %s: the next key is due at %s",
		FormatXMLDate(gap), FormatXMLDate(d.NextDue))
	return d
}

// Immediate returns an emergency decision: a key activating now and expiring Lifetime later,
// whatever the ring holds. ASP.NET Core nodes pick it up only on their next key ring refresh
// (up to 24 h later; until then they keep protecting with the old default key and cannot
// unprotect payloads made with the new one), and it becomes the default key only if no key in
// the ring activates later: revoke compromised successors too.
func (p Policy) Immediate(now time.Time) Decision {
	return Decision{
		Due:        true,
		Reason:     "an immediate (emergency) key was requested",
		Created:    now,
		Activation: now,
		Expiration: now.Add(p.Lifetime),
	}
}

// firstGap returns the first instant at or after now at which the ring has no default key.
// The default key changes only when a key becomes visible (MaxServerClockSkew before its
// activation) or the current one expires, so only those instants are checked. A gap of a single
// tick (left when a new key must outrank a revoked key activating at the same instant) is
// ignored.
func (r *Ring) firstGap(now time.Time) time.Time {
	events := []time.Time{now}
	for _, k := range r.keys {
		for _, e := range []time.Time{k.Activation.Add(-MaxServerClockSkew), k.Expiration} {
			if e.After(now) {
				events = append(events, e)
			}
		}
	}
	slices.SortFunc(events, time.Time.Compare)
	for _, e := range events {
		if r.ResolveDefaultKey(e).Default == nil && r.ResolveDefaultKey(e.Add(tick)).Default == nil {
			return e
		}
	}
	// Unreachable for a finite ring: at the latest expiration every key is expired.
	return events[len(events)-1]
}

// takeoverActivation returns the activation date for a new key that must be the default key
// from gap on: gap itself, unless a key activating at or after gap is visible then (it is the
// preferred key, and is revoked or unusable), in which case one tick after that key, so the new
// key outranks it.
func (r *Ring) takeoverActivation(gap time.Time) time.Time {
	latest, found := time.Time{}, false
	limit := gap.Add(MaxServerClockSkew)
	for _, k := range r.keys {
		if !k.Activation.After(limit) && (!found || k.Activation.After(latest)) {
			latest, found = k.Activation, true
		}
	}
	if !found || latest.Before(gap) {
		return gap
	}
	return latest.Add(tick)
}
