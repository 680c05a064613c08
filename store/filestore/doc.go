// Package filestore is the embedded default key-ring store: a directory on the local file
// system ("./data" unless configured), laid out so that ASP.NET Core's FileSystemXmlRepository
// (PersistKeysToFileSystem, ASPNETCORE_ReadOnlyDataProtectionKeyDirectory) reads each ring
// directory as its key folder with no code change.
//
// # Layout
//
//	DIR/                          the root, created 0700 by Open
//	DIR/<ring>/                   one directory per ring (0700)
//	DIR/<ring>/key-{guid}.xml     one file per element (0600), named "{friendly name}.xml"
//	DIR/<ring>/revocation-….xml   and holding keyring.FileXML(element): the XML declaration,
//	                              then the element indented by two spaces, as XElement.Save
//	DIR/<ring>/.dpkeyring.lock           the OS file lock (flock) held around every mutation
//	DIR/<ring>/.dpkeyring-lease.json     the writer lease: owner, fencing token, expiry
//	DIR/<ring>/.dpkeyring-meta.json      the ring metadata record and its version
//	DIR/<ring>/.dpkeyring-version        the write counter (see Versions)
//	DIR/<ring>/.tmp-<random>             a file being written (ignored; removed by the next writer)
//
// None of the bookkeeping files ends in ".xml", so ASP.NET Core, which reads every top-level
// "*.xml" file of the folder, never sees them.
//
// # Writes
//
// Every write is atomic: the content goes to a temporary file in the ring directory, which is
// fsynced, then linked to its final name (os.Link, which fails if the name exists, so an element
// file is never replaced), then the directory is fsynced. A crash (kill -9, power loss) leaves
// either the whole element file or none, plus at most an ignorable ".tmp-" file that the next
// writer of the ring removes. Bookkeeping files are replaced with rename instead of link.
//
// Mutations (Append, Lock, Unlock, PutMeta) hold an exclusive flock on the ring's lock file, so
// writers in any number of processes on one machine (or on NFS, where Linux maps flock to
// POSIX locks) are serialised, and the fencing check of Append and PutMeta is atomic with the
// write. List and Meta take no lock: they read whole files only.
//
// # Reading
//
// List returns every top-level "*.xml" file of the ring directory (as ASP.NET Core reads them),
// including files dropped in by ASP.NET Core or an operator, each in compact form and named by
// keyring.ElementName, or "unknown-" and 16 hex digits of the SHA-256 of its compact form when
// the element is of no known kind. Elements are sorted by name. A "*.xml" file that is not one
// well-formed XML element fails the whole List with an error wrapping [ErrUnreadableFile] that
// names the file: ASP.NET Core fails its whole read on such a file too (the file might hold a
// revocation), and serving a ring without it could resurrect a revoked key.
//
// # Versions
//
// A ring's version is the write counter plus the number of "*.xml" files. Both only grow while
// nothing is deleted, and a key file added by another writer moves the version even though it
// did not touch the counter. Deleting files by hand is outside the store contract and can make
// the version go back.
package filestore
