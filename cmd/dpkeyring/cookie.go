package main

import (
	"context"
	"fmt"
)

func (c *cli) decryptCookie(ctx context.Context, args []string) error {
	const name = "decrypt-cookie"
	fs := newFlagSet(name)
	keys := fs.String("keys", "", "")
	var cf certFlags
	cf.register(fs)
	var appNames stringList
	fs.Var(&appNames, "app-name", "")
	scheme := fs.String("scheme", "Cookies", "")
	umbraco := fs.Bool("umbraco", false, "")
	cookieName := fs.String("cookie-name", "", "")
	header := fs.String("cookie-header", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := c.parseFlags(fs, decryptCookieUsage, args)
	if err != nil || pos == nil {
		return err
	}
	set := explicitFlags(fs)
	if *keys == "" {
		return usageErrorf(name, "--keys is required")
	}
	if err := cf.validate(name); err != nil {
		return err
	}
	if *umbraco && set["scheme"] {
		return usageErrorf(name, "--umbraco and --scheme cannot be used together")
	}
	if *scheme == "" {
		return usageErrorf(name, "--scheme must not be empty")
	}
	switch {
	case set["cookie-header"] && len(pos) > 0:
		return usageErrorf(name, "give the cookie either as VALUE or with --cookie-header, not both")
	case !set["cookie-header"] && len(pos) == 0:
		return usageErrorf(name, "no cookie given (give its value, - to read it from stdin, or --cookie-header)")
	case len(pos) > 1:
		return usageErrorf(name, "unexpected argument %q", pos[1])
	case set["cookie-name"] && !set["cookie-header"]:
		return usageErrorf(name, "--cookie-name only applies to --cookie-header")
	}
	_, _, _, _ = appNames, cookieName, header, asJSON
	return fmt.Errorf("%s: not implemented yet", name)
}
