package keyring_test

import (
	"testing"

	"github.com/dpkeyring/dpkeyring/keyring"
)

func TestStatus(t *testing.T) {
	const now = "2015-06-01 00:00:00Z"
	tests := []struct {
		name string
		key  polSpec
		revs []keyring.Revocation
		want keyring.Status
	}{
		{
			name: "active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			want: keyring.StatusActive,
		},
		{
			name: "activation equal to now is active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: now, expires: "2016-01-01 00:00:00Z"},
			want: keyring.StatusActive,
		},
		{
			name: "activation one second after now is not yet active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-06-01 00:00:01Z", expires: "2016-01-01 00:00:00Z"},
			want: keyring.StatusNotYetActive,
		},
		{
			name: "activation within the clock skew is still not yet active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-06-01 00:04:00Z", expires: "2016-01-01 00:00:00Z"},
			want: keyring.StatusNotYetActive,
		},
		{
			name: "expiration equal to now is expired",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: now},
			want: keyring.StatusExpired,
		},
		{
			name: "expiration one second after now is active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2015-06-01 00:00:01Z"},
			want: keyring.StatusActive,
		},
		{
			name: "expiration before activation, both in the future, is expired only when passed",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-08-01 00:00:00Z", expires: "2015-07-01 00:00:00Z"},
			want: keyring.StatusNotYetActive,
		},
		{
			name: "expired beats not yet active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-08-01 00:00:00Z", expires: "2015-05-01 00:00:00Z"},
			want: keyring.StatusExpired,
		},
		{
			name: "revoked by id",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z", revoked: true},
			want: keyring.StatusRevoked,
		},
		{
			name: "revoked beats expired",
			key:  polSpec{name: "k", created: "2014-01-01 00:00:00Z", activation: "2014-01-01 00:00:00Z", expires: "2015-01-01 00:00:00Z", revoked: true},
			want: keyring.StatusRevoked,
		},
		{
			name: "revoked beats not yet active",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-08-01 00:00:00Z", expires: "2016-01-01 00:00:00Z", revoked: true},
			want: keyring.StatusRevoked,
		},
		{
			name: "revoke-all after creation",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			revs: []keyring.Revocation{{Date: polTime(t, "2015-01-01 00:00:01Z"), All: true}},
			want: keyring.StatusRevoked,
		},
		{
			name: "revoke-all equal to creation does not revoke",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			revs: []keyring.Revocation{{Date: polTime(t, "2015-01-01 00:00:00Z"), All: true}},
			want: keyring.StatusActive,
		},
		{
			name: "revocation of another id does not revoke",
			key:  polSpec{name: "k", created: "2015-01-01 00:00:00Z", activation: "2015-01-01 00:00:00Z", expires: "2016-01-01 00:00:00Z"},
			revs: []keyring.Revocation{{Date: polTime(t, "2015-01-01 00:00:00Z"), KeyID: polID(t, "other")}},
			want: keyring.StatusActive,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := mustPolRing(t, []polSpec{tc.key}, tc.revs...)
			k, err := r.Key(polID(t, tc.key.name))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Status(k, polTime(t, now)); got != tc.want {
				t.Errorf("Status = %v, want %v", got, tc.want)
			}
		})
	}
}
