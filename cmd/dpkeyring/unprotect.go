package main

import (
	"context"
	"fmt"
)

func (c *cli) unprotect(ctx context.Context, args []string) error {
	const name = "unprotect"
	fs := newFlagSet(name)
	keys := fs.String("keys", "", "")
	var cf certFlags
	cf.register(fs)
	appName := fs.String("app-name", "", "")
	var purposes stringList
	fs.Var(&purposes, "purpose", "")
	pos, err := c.parseFlags(fs, unprotectUsage, args)
	if err != nil || pos == nil {
		return err
	}
	if *keys == "" {
		return usageErrorf(name, "--keys is required")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usageErrorf(name, "no payload given (give it as an argument, or - to read it from stdin)")
	case len(pos) > 1:
		return usageErrorf(name, "unexpected argument %q", pos[1])
	}
	_ = appName
	return fmt.Errorf("%s: %w", name, errNotImplemented)
}
