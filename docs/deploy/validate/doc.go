// Package validate checks the deployment files in docs/deploy (and the repository's Dockerfile)
// against the real dpkeyring binary, in a module of its own so that the Kubernetes and Compose
// libraries it needs never enter the project's go.mod.
//
// Nothing here needs a container engine or a cluster. The tests
//
//   - build the binary exactly as the Dockerfile's build stage does (the test parses the
//     Dockerfile), check it is static and stripped, and run the image's ENTRYPOINT and CMD;
//   - strictly decode every Kubernetes manifest into the k8s.io/api types (unknown or duplicate
//     fields are errors), check the invariants the docs promise (probes, non-root, read-only
//     root, the shared key volume, the ASPNETCORE_ReadOnlyDataProtectionKeyDirectory variable),
//     and run every dpkeyring container's arguments against a server on loopback;
//   - load compose.yaml with the Compose specification's loader and run its commands the same way;
//   - check the systemd units with systemd-analyze verify and run their ExecStart lines;
//   - check that every dpkeyring command line in the integration docs uses real flags, and run
//     the troubleshooting and migration flows on an Umbraco backoffice cookie.
//
// Run from the repository root:
//
//	(cd docs/deploy/validate && go test ./...)
package validate
