package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi/client"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/gorilla/securecookie"
)

// exampleServer starts a dpkeyring server (the real API over a file store) for the examples.
// In a service, use the server's URL and a node token instead.
func exampleServer() (*testServer, func()) {
	srv, stop, err := newServer(nil, false)
	if err != nil {
		log.Fatal(err)
	}
	return srv, stop
}

// Example reads a ring, reads it again conditionally (304: the same document), and protects and
// unprotects a payload the way an ASP.NET Core application named "MyApp" does.
func Example() {
	srv, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(srv.URL, client.WithToken(nodeToken), client.WithNodeID("web-1"))
	if err != nil {
		log.Fatal(err)
	}
	doc, err := c.Fetch(ctx, "default", "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("keys:", doc.Keys.Len())

	same, err := c.Fetch(ctx, "default", doc.ETag)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("unchanged:", same == doc)

	purposes := keyring.Purposes("MyApp", "orders")
	payload, err := doc.Protect([]byte("order 42"), purposes)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := doc.Unprotect(payload, purposes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext))
	// Output:
	// keys: 1
	// unchanged: true
	// order 42
}

// ExampleClient_Watch keeps the current ring in an atomic pointer, as a service does: request
// handlers load it, the watcher replaces it as soon as the server has a new version.
func ExampleClient_Watch() {
	srv, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c, err := client.New(srv.URL, client.WithToken(nodeToken))
	if err != nil {
		log.Fatal(err)
	}
	var current atomic.Pointer[client.RingDoc]
	changed := make(chan struct{}, 10)
	go func() {
		_ = c.Watch(ctx, "default", func(doc *client.RingDoc) error {
			current.Store(doc)
			changed <- struct{}{}
			return nil
		}, client.WatchOptions{
			OnError: func(err error, retryIn time.Duration) { log.Printf("key ring: %v; retry in %s", err, retryIn) },
		})
	}()
	<-changed
	fmt.Println("keys:", current.Load().Keys.Len())

	// An operator rotates.
	if _, err := srv.postErr("/v1/rings/default/rotate", `{"immediate":true,"reason":"example"}`); err != nil {
		log.Fatal(err)
	}
	<-changed
	fmt.Println("keys after the rotation:", current.Load().Keys.Len())
	// Output:
	// keys: 1
	// keys after the rotation: 2
}

// ExampleRingDoc_SecureCookieCodecs signs and encrypts a Go cookie with keys derived from the
// ring: EncodeMulti uses the default key, DecodeMulti accepts every key that is not revoked.
func ExampleRingDoc_SecureCookieCodecs() {
	srv, stop := exampleServer()
	defer stop()
	c, err := client.New(srv.URL, client.WithToken(nodeToken))
	if err != nil {
		log.Fatal(err)
	}
	doc, err := c.Fetch(context.Background(), "default", "")
	if err != nil {
		log.Fatal(err)
	}
	codecs, err := doc.SecureCookieCodecs("shop/session")
	if err != nil {
		log.Fatal(err)
	}
	value, err := securecookie.EncodeMulti("session", map[string]string{"user": "alice"}, codecs...)
	if err != nil {
		log.Fatal(err)
	}
	var session map[string]string
	if err := securecookie.DecodeMulti("session", value, &session, codecs...); err != nil {
		log.Fatal(err)
	}
	fmt.Println("user:", session["user"])
	// Output:
	// user: alice
}

// ExampleClient_Get starts from the on-disk cache when the server is unreachable.
func ExampleClient_Get() {
	srv, stop := exampleServer()
	cacheDir, err := os.MkdirTemp("", "dpkeyring-cache-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(cacheDir)

	c, err := client.New(srv.URL, client.WithToken(nodeToken), client.WithCacheDir(cacheDir))
	if err != nil {
		log.Fatal(err)
	}
	doc, err := c.Get(context.Background(), "default")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("from the server, stale:", doc.Stale)

	url := srv.URL
	stop() // the server goes away; the service restarts

	c, err = client.New(url, client.WithToken(nodeToken), client.WithCacheDir(cacheDir))
	if err != nil {
		log.Fatal(err)
	}
	doc, err = c.Get(context.Background(), "default")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("from the cache, stale:", doc.Stale, "keys:", doc.Keys.Len())
	// Output:
	// from the server, stale: false
	// from the cache, stale: true keys: 1
}
