package main

// Usage texts. docs/cli.md says the same at more length; keep the two in step.

const mainUsage = `dpkeyring: the single writer of ASP.NET Core Data Protection keys

Usage:
  dpkeyring <command> [flags] [arguments]

Commands:
  keys list        show the keys, revocations and skipped elements of a key ring
  keys new         write a new key file into a key directory
  unprotect        decrypt a Data Protection payload (IDataProtector.Unprotect)
  decrypt-cookie   decrypt an ASP.NET Core authentication cookie and show its ticket
  serve            run the key-ring server (HTTP API, rotation, tokens)
  rotate           apply a ring's rotation policy once (cron), through a server or a store
  token            create, list and revoke the server's API tokens
  agent            keep a key folder equal to a server's ring (beside each ASP.NET Core node)
  import           copy a key ring (key folder, <repository> document, store) into a store
  export           write a key ring as one <repository> document
  version          print the version
  help [command]   show this text, or a command's usage

Key rings (--keys PATH): a directory of element files (every *.xml file at its top level, as
PersistKeysToFileSystem stores them), one element file, a <repository> document (the Azure
Blob layout), or a store spec (file:DIR, redis://…, rediss://…, redis+sentinel://…,
redis+cluster://…, vault://…; --ring R picks the ring, default "default"; see docs/backends.md).

Exit codes: 0 ok, 1 cannot decrypt or another failure (stderr says why), 2 usage error.

Run 'dpkeyring <command> -h' for a command's flags. Documentation: docs/cli.md.
`

const keysUsage = `Usage:
  dpkeyring keys list --keys PATH [--ring R] [--cert FILE [--cert-password-file F]] [--json]
  dpkeyring keys new --dir DIR [--lifetime 90d] [--activate-now]

Run 'dpkeyring keys <subcommand> -h' for details.
`

const certFlagsUsage = `  --cert FILE
        certificate with private key that protects master keys (ProtectKeysWithCertificate):
        PKCS#12 (.pfx/.p12) or PEM (certificate and private key in one file); may be repeated
  --cert-password-file F
        file holding the PKCS#12 password (one final newline is ignored)
`

const keysListUsage = `Usage:
  dpkeyring keys list --keys PATH [--ring R] [--cert FILE [--cert-password-file F]] [--json]

Shows every key of the ring (id, status now, creation, activation and expiration dates,
algorithms, how the master key is protected, and * for the default key an ASP.NET Core node
would protect with now), the elements that were skipped and why, and the revocations.

Flags:
  --keys PATH
        key ring: a directory of *.xml element files, one element file, a <repository> document
        or a store spec (file:DIR, redis://…, vault://…)
  --ring R
        the ring to read when --keys is a store spec (default "default")
` + certFlagsUsage + `  --json
        print one JSON object instead of tables
`

const keysNewUsage = `Usage:
  dpkeyring keys new --dir DIR [--lifetime 90d] [--activate-now]

Writes a new key (AES-256-CBC + HMACSHA256, 64-byte master key, unprotected) as DIR/key-{id}.xml,
exactly as an ASP.NET Core node writes it, and prints the key id. DIR is created (mode 0700) if
missing; the file is written with mode 0600.

Dates: without --activate-now the key follows the rotation policy. In an empty ring, or one with
no usable default key, it activates now. Otherwise it is the successor of the current default key:
it activates when the ring would run out of a default key (the current default's expiration).
The key expires LIFETIME after its activation.

Flags:
  --dir DIR
        key directory (PersistKeysToFileSystem)
  --lifetime DURATION
        key lifetime from activation: days as "90d", or a Go duration such as "2160h";
        at least 7d (default 90d)
  --activate-now
        activate the key now, whatever the ring holds (emergency). ASP.NET Core nodes load it
        on their next key ring refresh, up to 24 hours later
`

const unprotectUsage = `Usage:
  dpkeyring unprotect --keys PATH [--ring R] [--cert FILE ...] [--app-name NAME] [--purpose P]... (PAYLOAD | -)

Decrypts a protected payload as IDataProtector.Unprotect does and writes the plaintext bytes to
stdout. PAYLOAD is base64url (padded or standard base64 is accepted too); "-" reads it from stdin.
The purposes are the application name (when not empty) followed by each --purpose in order, as
in provider.CreateProtector(P1, P2, ...).

Flags:
  --keys PATH
        key ring: a directory of *.xml element files, one element file, a <repository> document
        or a store spec (file:DIR, redis://…, vault://…)
  --ring R
        the ring to read when --keys is a store spec (default "default")
` + certFlagsUsage + `  --app-name NAME
        the application discriminator (SetApplicationName, or the content root path when unset);
        empty means none
  --purpose P
        a purpose of the protector chain; repeat in order
`

const decryptCookieUsage = `Usage:
  dpkeyring decrypt-cookie --keys PATH [--ring R] [--cert FILE ...] [--app-name NAME]... [--scheme S]
      [--umbraco] [--cookie-name NAME] [--json] (VALUE | --cookie-header HEADER | -)

Decrypts an ASP.NET Core cookie-authentication cookie and prints the key id and its status, the
application name and purposes that worked, and the ticket: scheme, identities with every claim,
and the properties with the issued and expiry dates.

Input: VALUE is the cookie value; "-" reads it from stdin. --cookie-header takes a whole Cookie
request header ("-" reads it from stdin); the cookie named by --cookie-name is taken from it and
reassembled from its chunks (name=chunks-N, nameC1 ... nameCN) as ChunkingCookieManager does.

Flags:
  --keys PATH
        key ring: a directory of *.xml element files, one element file, a <repository> document
        or a store spec (file:DIR, redis://…, vault://…)
  --ring R
        the ring to read when --keys is a store spec (default "default")
` + certFlagsUsage + `  --app-name NAME
        application discriminator to try; repeat to try several in order (the first that
        decrypts wins). "" means none; without --app-name only none is tried
  --scheme S
        authentication scheme (default "Cookies"); the purposes are
        CookieAuthenticationMiddleware, S, v2
  --umbraco
        the Umbraco backoffice cookie: scheme UmbracoBackOffice, cookie name UMB_UCONTEXT
  --cookie-name NAME
        cookie to take from --cookie-header (default .AspNetCore.{scheme}, or UMB_UCONTEXT)
  --cookie-header HEADER
        a Cookie request header holding the cookie (and its chunks)
  --json
        print one JSON object (on failure too: then it holds the diagnosis)
`

const versionUsage = `Usage:
  dpkeyring version

Prints the version, the VCS revision and the Go version the binary was built with.
`
