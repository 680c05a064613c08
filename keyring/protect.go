package keyring

import "time"

// Protect protects plaintext for the purpose chain purposes with the ring's default key at now
// ([Ring.DefaultKey]: the default key, else the fallback key), as an ASP.NET Core node's
// IDataProtector.Protect does; the application name, when the nodes set one, is the first
// purpose. It returns an error wrapping [ErrNoDefaultKey] if the ring has no key to protect
// with, and the errors of [ProtectWithKey].
func (r *Ring) Protect(now time.Time, plaintext []byte, purposes []string) ([]byte, error) {
	k, err := r.DefaultKey(now)
	if err != nil {
		return nil, err
	}
	_, kdf, err := r.lookup(k.ID)
	if err != nil {
		return nil, err
	}
	return protectWithKey(k, kdf, plaintext, purposes)
}
