package keyring_test

import (
	"crypto/rand"
	"fmt"
	"log"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// Example builds a key ring, keeps it rotated with the default policy, protects a payload the
// way an ASP.NET Core application named "MyApp" does, and unprotects it again.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// An empty ring: the policy says a key activating now is due.
	ring, err := keyring.NewRing(nil, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	policy := keyring.DefaultPolicy()
	d := policy.Decide(ring, now)
	fmt.Println("due:", d.Due, "activation:", keyring.FormatXMLDate(d.Activation), "expiration:", keyring.FormatXMLDate(d.Expiration))

	// Create the key as ASP.NET Core does: AES-256-CBC + HMACSHA256 and a 64-byte master key.
	masterKey := make([]byte, 64)
	if _, err := rand.Read(masterKey); err != nil {
		log.Fatal(err)
	}
	id, err := keyring.ParseKeyID("3d6d01fd-c0e7-44ae-82dd-013b996b4093")
	if err != nil {
		log.Fatal(err)
	}
	key := keyring.Key{
		ID:         id,
		Created:    d.Created,
		Activation: d.Activation,
		Expiration: d.Expiration,
		Descriptor: &keyring.Descriptor{
			Encryption: keyring.AES256CBC,
			Validation: keyring.HMACSHA256,
			MasterKey:  keyring.NewSecret(masterKey),
		},
	}
	ring, err = keyring.NewRing([]keyring.Key{key}, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", ring.Status(key, now))
	next := policy.Decide(ring, now)
	fmt.Println("due:", next.Due, "next due:", keyring.FormatXMLDate(next.NextDue))

	// Protect and unprotect with the application name as the first purpose.
	purposes := keyring.Purposes("MyApp", "MyPurpose")
	payload, err := ring.Protect(now, []byte("hello"), purposes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("payload starts with:", keyring.Base64URLEncode(payload)[:5])
	plaintext, usedKey, err := ring.Unprotect(payload, purposes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, with key %s\n", plaintext, usedKey.ID)

	// Output:
	// due: true activation: 2026-01-01T00:00:00Z expiration: 2026-04-01T00:00:00Z
	// status: active
	// due: false next due: 2026-03-28T00:00:00Z
	// payload starts with: CfDJ8
	// hello, with key 3d6d01fd-c0e7-44ae-82dd-013b996b4093
}
