// Command dpkeyring is the single writer of ASP.NET Core Data Protection keys for a fleet of
// ASP.NET Core nodes (Umbraco CM/CD and others), and the operator's tool to inspect key rings and
// decrypt their payloads and cookies.
//
// Run "dpkeyring help" for the commands; docs/cli.md documents them.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}
