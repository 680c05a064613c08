package keyring

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrMalformedXML reports an element that is not well-formed XML. ASP.NET Core's repositories
// fail the whole read on such an element (XElement.Load throws), so [ParseElements] does too.
var ErrMalformedXML = errors.New("keyring: element is not well-formed XML")

// Namespaces of the key ring XML.
const (
	// dataProtectionNS holds the requiresEncryption attribute and the encryptedSecret element.
	dataProtectionNS = "http://schemas.asp.net/2015/03/dataProtection"
	xmlencNS         = "http://www.w3.org/2001/04/xmlenc#"
	xmldsigNS        = "http://www.w3.org/2000/09/xmldsig#"
)

// Type names met in deserializerType and decryptorType attributes, without the assembly part.
const (
	typeNamePrefix       = "Microsoft.AspNetCore.DataProtection."
	oldTypeNamespace     = "Microsoft.AspNet.DataProtection"
	currentTypeNamespace = "Microsoft.AspNetCore.DataProtection"
	dataProtectionAsm    = "Microsoft.AspNetCore.DataProtection"

	configurationModel        = "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel."
	authenticatedDeserializer = configurationModel + "AuthenticatedEncryptorDescriptorDeserializer"
	managedDeserializer       = configurationModel + "ManagedAuthenticatedEncryptorDescriptorDeserializer"
	cngCbcDeserializer        = configurationModel + "CngCbcAuthenticatedEncryptorDescriptorDeserializer"
	cngGcmDeserializer        = configurationModel + "CngGcmAuthenticatedEncryptorDescriptorDeserializer"

	xmlEncryption            = "Microsoft.AspNetCore.DataProtection.XmlEncryption."
	nullDecryptor            = xmlEncryption + "NullXmlDecryptor"
	encryptedXmlDecryptor    = xmlEncryption + "EncryptedXmlDecryptor"
	dpapiDecryptor           = xmlEncryption + "DpapiXmlDecryptor"
	dpapiNGDecryptor         = xmlEncryption + "DpapiNGXmlDecryptor"
	assemblyQualifiedTail    = ", Microsoft.AspNetCore.DataProtection, Version=" + aspNetCoreAssemblyVersion + ", Culture=neutral, PublicKeyToken=adb9793829ddae60"
	defaultDeserializerAQN   = authenticatedDeserializer + assemblyQualifiedTail
	encryptedXmlDecryptorAQN = encryptedXmlDecryptor + assemblyQualifiedTail
)

// aspNetCoreAssemblyVersion is the assembly version current ASP.NET Core (10.x) writes in type
// names. Readers ignore it (TypeForwardingActivator removes every ", Version=…").
const aspNetCoreAssemblyVersion = "10.0.0.0"

// forwardTypeName resolves an assembly-qualified type name as ASP.NET Core's
// TypeForwardingActivator and Type.GetType do for the Data Protection types: the old
// Microsoft.AspNet.DataProtection namespace is rewritten, the version is ignored. It returns the
// type's full name and whether the assembly part (if any) names the Data Protection assembly.
func forwardTypeName(aqn string) (fullName string, dataProtectionAssembly bool) {
	name := strings.ReplaceAll(aqn, oldTypeNamespace, currentTypeNamespace)
	fullName, asm, hasAsm := strings.Cut(name, ",")
	fullName = strings.TrimSpace(fullName)
	if !hasAsm {
		// Type.GetType without an assembly looks in the calling assembly: Data Protection.
		return fullName, strings.HasPrefix(fullName, typeNamePrefix)
	}
	asm, _, _ = strings.Cut(asm, ",")
	return fullName, strings.TrimSpace(asm) == dataProtectionAsm
}

// ParseOptions configures [ParseKey], [ParseElements] and [ParseRepository].
type ParseOptions struct {
	// Certificates are tried, in order, to open master keys protected with
	// ProtectKeysWithCertificate (EncryptedXmlDecryptor). A certificate matches the one named in
	// the encrypted key by its bytes (thumbprint), or else by its public key.
	Certificates []CertificateKey
}

// ParseKey reads one key element (compact or file form) as ASP.NET Core's XmlKeyManager does.
// It returns an error wrapping [ErrMalformedKey] if the element is not a key or its id or dates
// cannot be read; ASP.NET Core skips such keys.
//
// The descriptor is read eagerly, but a descriptor that cannot be read does not fail the key
// (ASP.NET Core reads it lazily and only fails when the key is used): the key is returned with a
// nil Descriptor and DescriptorErr saying why, wrapping [ErrUnsupportedProtection] (the master
// key is protected by DPAPI, DPAPI-NG, Azure Key Vault or a certificate that was not given),
// [ErrUnsupportedAlgorithm] (an unknown descriptor type or algorithm) or [ErrMalformedKey].
func ParseKey(element []byte, opts ParseOptions) (Key, error) {
	n, err := parseNode(element)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %w", ErrMalformedXML, err)
	}
	stripFormatting(n)
	return parseKeyNode(n, opts)
}

func parseKeyNode(n *node, opts ParseOptions) (Key, error) {
	if !n.is("key", "") {
		return Key{}, fmt.Errorf("%w: element <%s> is not <key>", ErrMalformedKey, elementLabel(n))
	}
	var k Key
	idText, ok := n.attr("id")
	if !ok {
		return Key{}, fmt.Errorf("%w: no id attribute", ErrMalformedKey)
	}
	id, err := ParseKeyID(idText)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	k.ID = id
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{
		{"creationDate", &k.Created},
		{"activationDate", &k.Activation},
		{"expirationDate", &k.Expiration},
	} {
		e := n.element(d.name)
		if e == nil {
			return Key{}, fmt.Errorf("%w: key %s has no %s", ErrMalformedKey, id, d.name)
		}
		t, err := ParseXMLDate(e.value())
		if err != nil {
			return Key{}, fmt.Errorf("%w: key %s %s: %w", ErrMalformedKey, id, d.name, err)
		}
		*d.dst = t
	}
	k.XML = n.compact()
	desc := n.element("descriptor")
	if desc != nil {
		k.DeserializerType, _ = desc.attr("deserializerType")
	}
	k.Protection = protectionOf(desc)
	k.Descriptor, k.DescriptorErr = readDescriptor(desc, opts)
	return k, nil
}

// readDescriptor is XmlKeyManager.DeserializeDescriptorFromKeyElement: decrypt the descriptor's
// single child element, then hand it to the deserializer named by deserializerType.
func readDescriptor(desc *node, opts ParseOptions) (*Descriptor, error) {
	if desc == nil {
		return nil, fmt.Errorf("%w: no descriptor element", ErrMalformedKey)
	}
	typeName, ok := desc.attr("deserializerType")
	if !ok {
		return nil, fmt.Errorf("%w: descriptor has no deserializerType", ErrMalformedKey)
	}
	children := desc.childElements()
	if len(children) != 1 {
		return nil, fmt.Errorf("%w: descriptor has %d child elements, want 1", ErrMalformedKey, len(children))
	}
	inner, err := decryptElement(children[0], opts)
	if err != nil {
		return nil, err
	}
	fullName, ours := forwardTypeName(typeName)
	if !ours {
		return nil, fmt.Errorf("%w: descriptor deserializer type %q", ErrUnsupportedAlgorithm, typeName)
	}
	switch fullName {
	case authenticatedDeserializer:
		return importAuthenticatedDescriptor(inner)
	case managedDeserializer:
		return importManagedDescriptor(inner)
	case cngCbcDeserializer:
		return importCngDescriptor(inner, false)
	case cngGcmDeserializer:
		return importCngDescriptor(inner, true)
	}
	return nil, fmt.Errorf("%w: descriptor deserializer type %q", ErrUnsupportedAlgorithm, typeName)
}

// importAuthenticatedDescriptor is AuthenticatedEncryptorDescriptorDeserializer.ImportFromXml.
func importAuthenticatedDescriptor(e *node) (*Descriptor, error) {
	var d Descriptor
	enc := e.element("encryption")
	if enc == nil {
		return nil, fmt.Errorf("%w: descriptor has no encryption element", ErrMalformedKey)
	}
	name, _ := enc.attr("algorithm")
	alg, ok := parseEnum(name, encryptionNames[1:])
	if !ok {
		return nil, fmt.Errorf("%w: encryption algorithm %q", ErrUnsupportedAlgorithm, name)
	}
	d.Encryption = EncryptionAlgorithm(alg + 1)
	if !d.Encryption.IsGCM() {
		val := e.element("validation")
		if val == nil {
			return nil, fmt.Errorf("%w: descriptor has no validation element", ErrMalformedKey)
		}
		name, _ := val.attr("algorithm")
		v, ok := parseEnum(name, []string{"HMACSHA256", "HMACSHA512"})
		if !ok {
			return nil, fmt.Errorf("%w: validation algorithm %q", ErrUnsupportedAlgorithm, name)
		}
		d.Validation = ValidationAlgorithm(v + 1)
	}
	mks := e.elements("masterKey")
	if len(mks) != 1 {
		return nil, fmt.Errorf("%w: descriptor has %d masterKey elements, want 1", ErrMalformedKey, len(mks))
	}
	mk, err := decodeMasterKey(mks[0])
	if err != nil {
		return nil, err
	}
	d.MasterKey = mk
	return &d, nil
}

// parseEnum is Enum.Parse without ignoreCase: a member name (white space around it allowed) or
// the member's integer value.
func parseEnum(s string, names []string) (int, bool) {
	s = strings.TrimSpace(s)
	for i, n := range names {
		if s == n {
			return i, true
		}
	}
	if v, err := strconv.Atoi(strings.TrimPrefix(s, "+")); err == nil && v >= 0 && v < len(names) {
		return v, true
	}
	return 0, false
}

// importManagedDescriptor is ManagedAuthenticatedEncryptorDescriptorDeserializer.ImportFromXml:
// a managed symmetric algorithm (Aes) with a key length in bits, and a managed HMAC.
func importManagedDescriptor(e *node) (*Descriptor, error) {
	var d Descriptor
	enc := e.element("encryption")
	if enc == nil {
		return nil, fmt.Errorf("%w: descriptor has no encryption element", ErrMalformedKey)
	}
	name, _ := enc.attr("algorithm")
	if !isManagedAes(name) {
		return nil, fmt.Errorf("%w: managed encryption algorithm %q", ErrUnsupportedAlgorithm, name)
	}
	bits, _ := enc.attr("keyLength")
	alg, err := aesCBCForBits(bits)
	if err != nil {
		return nil, err
	}
	d.Encryption = alg
	val := e.element("validation")
	if val == nil {
		return nil, fmt.Errorf("%w: descriptor has no validation element", ErrMalformedKey)
	}
	name, _ = val.attr("algorithm")
	d.Validation = managedHMAC(name)
	if d.Validation == ValidationUnknown {
		return nil, fmt.Errorf("%w: managed validation algorithm %q", ErrUnsupportedAlgorithm, name)
	}
	if d.MasterKey, err = firstMasterKey(e); err != nil {
		return nil, err
	}
	return &d, nil
}

// isManagedAes reports whether a managed descriptor's algorithm names AES: the friendly name
// "Aes" or an assembly-qualified name of one of .NET's AES classes.
func isManagedAes(name string) bool {
	if name == "Aes" {
		return true
	}
	full, _, _ := strings.Cut(name, ",")
	switch strings.TrimSpace(full) {
	case "System.Security.Cryptography.Aes", "System.Security.Cryptography.AesManaged",
		"System.Security.Cryptography.AesCryptoServiceProvider", "System.Security.Cryptography.AesCng":
		return true
	}
	return false
}

// managedHMAC maps a managed descriptor's validation algorithm (friendly name or
// assembly-qualified name of a System.Security.Cryptography HMAC class).
func managedHMAC(name string) ValidationAlgorithm {
	full, _, _ := strings.Cut(name, ",")
	full = strings.TrimPrefix(strings.TrimSpace(full), "System.Security.Cryptography.")
	switch full {
	case "HMACSHA1":
		return HMACSHA1
	case "HMACSHA256":
		return HMACSHA256
	case "HMACSHA384":
		return HMACSHA384
	case "HMACSHA512":
		return HMACSHA512
	}
	return ValidationUnknown
}

func aesCBCForBits(bits string) (EncryptionAlgorithm, error) {
	switch strings.TrimSpace(bits) {
	case "128":
		return AES128CBC, nil
	case "192":
		return AES192CBC, nil
	case "256":
		return AES256CBC, nil
	}
	return EncryptionUnknown, fmt.Errorf("%w: AES key length %q bits", ErrUnsupportedAlgorithm, bits)
}

// importCngDescriptor reads the Windows CNG descriptors (CngCbc… and CngGcm…), which produce the
// same payloads as the managed implementations: <encryption algorithm="AES" keyLength="256" />,
// for CBC <hash algorithm="SHA256" />, and <masterKey>.
func importCngDescriptor(e *node, gcm bool) (*Descriptor, error) {
	var d Descriptor
	enc := e.element("encryption")
	if enc == nil {
		return nil, fmt.Errorf("%w: descriptor has no encryption element", ErrMalformedKey)
	}
	name, _ := enc.attr("algorithm")
	if !strings.EqualFold(strings.TrimSpace(name), "AES") {
		return nil, fmt.Errorf("%w: CNG encryption algorithm %q", ErrUnsupportedAlgorithm, name)
	}
	bits, _ := enc.attr("keyLength")
	alg, err := aesCBCForBits(bits)
	if err != nil {
		return nil, err
	}
	d.Encryption = alg
	if gcm {
		d.Encryption = alg + (AES128GCM - AES128CBC)
	} else {
		h := e.element("hash")
		if h == nil {
			return nil, fmt.Errorf("%w: descriptor has no hash element", ErrMalformedKey)
		}
		name, _ := h.attr("algorithm")
		d.Validation = managedHMAC("HMAC" + strings.ToUpper(strings.TrimSpace(name)))
		if d.Validation == ValidationUnknown {
			return nil, fmt.Errorf("%w: CNG hash algorithm %q", ErrUnsupportedAlgorithm, name)
		}
	}
	if d.MasterKey, err = firstMasterKey(e); err != nil {
		return nil, err
	}
	return &d, nil
}

// firstMasterKey decodes the first masterKey child of a managed or CNG descriptor, which .NET's
// deserializers for those read with element.Element("masterKey") (any further ones are ignored,
// unlike the default descriptor's Single()).
func firstMasterKey(e *node) (Secret, error) {
	mk := e.element("masterKey")
	if mk == nil {
		return Secret{}, fmt.Errorf("%w: descriptor has no masterKey element", ErrMalformedKey)
	}
	return decodeMasterKey(mk)
}

// decodeMasterKey is Convert.FromBase64String of the masterKey element's string value: all
// descendant text, with the white space FromBase64String skips removed.
func decodeMasterKey(mk *node) (Secret, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, mk.value())
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		// Never echo the value: it is key material.
		return Secret{}, fmt.Errorf("%w: masterKey is not valid base64", ErrMalformedKey)
	}
	return NewSecret(b), nil
}

// ParseRevocation reads one revocation element as XmlKeyManager.ProcessRevocationElement does.
// It returns an error wrapping [ErrMalformedRevocation] if the key id, or for a revocation of
// all keys the revocation date, cannot be read. (For a single-key revocation ASP.NET Core does
// not read the date; a missing or unreadable one leaves Date zero.)
func ParseRevocation(element []byte) (Revocation, error) {
	n, err := parseNode(element)
	if err != nil {
		return Revocation{}, fmt.Errorf("%w: %w", ErrMalformedRevocation, err)
	}
	stripFormatting(n)
	return parseRevocationNode(n)
}

func parseRevocationNode(n *node) (Revocation, error) {
	if !n.is("revocation", "") {
		return Revocation{}, fmt.Errorf("%w: element <%s> is not <revocation>", ErrMalformedRevocation, elementLabel(n))
	}
	var r Revocation
	k := n.element("key")
	if k == nil {
		return Revocation{}, fmt.Errorf("%w: no key element", ErrMalformedRevocation)
	}
	id, ok := k.attr("id")
	if !ok {
		return Revocation{}, fmt.Errorf("%w: key element has no id", ErrMalformedRevocation)
	}
	var dateErr error
	if d := n.element("revocationDate"); d == nil {
		dateErr = errors.New("no revocationDate element")
	} else {
		r.Date, dateErr = ParseXMLDate(d.value())
	}
	if id == "*" {
		if dateErr != nil {
			return Revocation{}, fmt.Errorf("%w: %w", ErrMalformedRevocation, dateErr)
		}
		r.All = true
	} else {
		var err error
		r.KeyID, err = ParseKeyID(id)
		if err != nil {
			return Revocation{}, fmt.Errorf("%w: %w", ErrMalformedRevocation, err)
		}
	}
	if reason := n.element("reason"); reason != nil {
		r.Reason = reason.value()
	}
	r.XML = n.compact()
	return r, nil
}

// ParseElements builds a ring from the elements of a repository, as XmlKeyManager.GetAllKeys
// does: key elements that cannot be read are skipped (listed in [Ring.Skipped] with the reason),
// as are elements that are neither keys nor revocations; a revocation that cannot be read fails
// the whole ring (an error wrapping [ErrMalformedRevocation]), as do two keys with one id
// ([ErrDuplicateKey]) and an element that is not well-formed XML ([ErrMalformedXML]).
func ParseElements(elements [][]byte, opts ParseOptions) (*Ring, error) {
	var keys []Key
	var revs []Revocation
	var skipped []SkippedElement
	for i, e := range elements {
		n, err := parseNode(e)
		if err != nil {
			return nil, fmt.Errorf("%w: element %d: %w", ErrMalformedXML, i, err)
		}
		stripFormatting(n)
		switch {
		case n.is("key", ""):
			k, err := parseKeyNode(n, opts)
			if err != nil {
				skipped = append(skipped, SkippedElement{Name: keyElementName(n), Index: i, Err: err})
				continue
			}
			keys = append(keys, k)
		case n.is("revocation", ""):
			r, err := parseRevocationNode(n)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			revs = append(revs, r)
		default:
			skipped = append(skipped, SkippedElement{Index: i,
				Err: fmt.Errorf("keyring: unknown element <%s> in the key ring, skipped", elementLabel(n))})
		}
	}
	return NewRing(keys, revs, skipped)
}

// keyElementName returns "key-{id}" when the key element's id can be read, else "".
func keyElementName(n *node) string {
	s, _ := n.attr("id")
	id, err := ParseKeyID(s)
	if err != nil {
		return ""
	}
	return "key-" + id.String()
}

// elementLabel names an element for messages: its local name, with its namespace if any.
func elementLabel(n *node) string {
	if n.ns == "" {
		return n.name.Local
	}
	return "{" + n.ns + "}" + n.name.Local
}

// RevocationName returns the friendly name XmlKeyManager gives a revocation, which is also its
// file name without ".xml": "revocation-{id}" for one key, [RevokeAllName] for all keys.
func RevocationName(r Revocation) string {
	if r.All {
		return RevokeAllName(r.Date)
	}
	return "revocation-" + r.KeyID.String()
}
