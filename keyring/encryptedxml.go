package keyring

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// XML Encryption algorithm URIs.
const (
	algRSA15     = xmlencNS + "rsa-1_5"
	algRSAOAEP   = xmlencNS + "rsa-oaep-mgf1p"
	algAES128CBC = xmlencNS + "aes128-cbc"
	algAES192CBC = xmlencNS + "aes192-cbc"
	algAES256CBC = xmlencNS + "aes256-cbc"
	typeElement  = xmlencNS + "Element"
)

// decryptorProtection says what a decryptorType attribute names.
func decryptorProtection(typeName string) Protection {
	full, ours := forwardTypeName(typeName)
	if ours {
		switch full {
		case nullDecryptor:
			return ProtectionNullEncryptor
		case encryptedXmlDecryptor:
			return ProtectionCertificate
		case dpapiDecryptor:
			return ProtectionDPAPI
		case dpapiNGDecryptor:
			return ProtectionDPAPING
		}
	}
	if strings.Contains(full, "AzureKeyVault") {
		return ProtectionAzureKeyVault
	}
	return ProtectionOther
}

// protectionOf says how the master key inside a <descriptor> element is stored: by the
// decryptorType of its first encryptedSecret, or ProtectionNone when there is none.
func protectionOf(desc *node) Protection {
	if desc == nil {
		return ProtectionUnknown
	}
	if es := findEncryptedSecret(desc); es != nil {
		t, _ := es.attr("decryptorType")
		return decryptorProtection(t)
	}
	return ProtectionNone
}

func findEncryptedSecret(n *node) *node {
	if n.is("encryptedSecret", dataProtectionNS) {
		return n
	}
	for _, c := range n.children {
		if c.kind == elementNode {
			if es := findEncryptedSecret(c); es != nil {
				return es
			}
		}
	}
	return nil
}

// decryptElement is XmlEncryptionExtensions.DecryptElement: it returns a copy of e in which every
// {http://schemas.asp.net/2015/03/dataProtection}encryptedSecret element (e itself included) is
// replaced by the decryption of its single child element. Decrypted output is not searched
// again.
func decryptElement(e *node, opts ParseOptions) (*node, error) {
	if findEncryptedSecret(e) == nil {
		return e, nil
	}
	var walk func(n *node) (*node, error)
	walk = func(n *node) (*node, error) {
		if n.is("encryptedSecret", dataProtectionNS) {
			return decryptSecret(n, opts)
		}
		c := *n
		c.children = make([]*node, len(n.children))
		for i, ch := range n.children {
			if ch.kind != elementNode {
				c.children[i] = ch
				continue
			}
			d, err := walk(ch)
			if err != nil {
				return nil, err
			}
			c.children[i] = d
		}
		return &c, nil
	}
	return walk(e)
}

// decryptSecret opens one encryptedSecret element with the decryptor its decryptorType names.
func decryptSecret(es *node, opts ParseOptions) (*node, error) {
	typeName, _ := es.attr("decryptorType")
	children := es.childElements()
	if len(children) != 1 {
		return nil, fmt.Errorf("%w: encryptedSecret has %d child elements, want 1", ErrMalformedKey, len(children))
	}
	switch decryptorProtection(typeName) {
	case ProtectionNullEncryptor:
		inner := children[0].childElements()
		if len(inner) != 1 {
			return nil, fmt.Errorf("%w: unencryptedKey has %d child elements, want 1", ErrMalformedKey, len(inner))
		}
		return inner[0].clone(), nil
	case ProtectionCertificate:
		return decryptEncryptedData(children[0], opts.Certificates)
	case ProtectionDPAPI:
		return nil, fmt.Errorf("%w: the master key is encrypted with Windows DPAPI (ProtectKeysWithDpapi); only the Windows account that wrote it can open it, not this platform", ErrUnsupportedProtection)
	case ProtectionDPAPING:
		return nil, fmt.Errorf("%w: the master key is encrypted with Windows DPAPI-NG (ProtectKeysWithDpapiNG), which this platform cannot open", ErrUnsupportedProtection)
	case ProtectionAzureKeyVault:
		return nil, fmt.Errorf("%w: the master key is encrypted with Azure Key Vault (ProtectKeysWithAzureKeyVault), which this platform cannot open", ErrUnsupportedProtection)
	}
	return nil, fmt.Errorf("%w: the master key is encrypted by an unknown decryptor %q, which this platform cannot open", ErrUnsupportedProtection, typeName)
}

// firstChild returns the first child element with the given local name and namespace, or nil.
func (n *node) firstChild(local, ns string) *node {
	for _, c := range n.children {
		if c.is(local, ns) {
			return c
		}
	}
	return nil
}

// childrenNamed returns the child elements with the given local name and namespace.
func (n *node) childrenNamed(local, ns string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.is(local, ns) {
			out = append(out, c)
		}
	}
	return out
}

// decodeBase64Text decodes element text as Convert.FromBase64String does (white space ignored).
func decodeBase64Text(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.Strict().DecodeString(s)
}

var errCertDecrypt = errors.New("decryption with the certificate's private key failed (wrong certificate or corrupt data)")

// decryptEncryptedData is what EncryptedXmlDecryptor does with an <EncryptedData> element
// (W3C XML Encryption, as .NET's EncryptedXml): find an EncryptedKey whose X509Data names one of
// the given certificates, unwrap the session key with its RSA private key (rsa-1_5 or
// rsa-oaep-mgf1p), decrypt the AES-CBC data (IV first, ISO 10126 padding) and parse the result
// as the plaintext element.
func decryptEncryptedData(ed *node, certs []CertificateKey) (*node, error) {
	if !ed.is("EncryptedData", xmlencNS) {
		return nil, fmt.Errorf("%w: certificate-encrypted secret holds <%s>, not <EncryptedData>", ErrMalformedKey, elementLabel(ed))
	}
	var keyLen int
	var alg string
	if m := ed.firstChild("EncryptionMethod", xmlencNS); m != nil {
		alg, _ = m.attr("Algorithm")
	}
	switch alg {
	case algAES128CBC:
		keyLen = 16
	case algAES192CBC:
		keyLen = 24
	case algAES256CBC:
		keyLen = 32
	default:
		return nil, fmt.Errorf("%w: XML Encryption data algorithm %q", ErrUnsupportedAlgorithm, alg)
	}
	ct, err := cipherValue(ed)
	if err != nil {
		return nil, err
	}
	var named []string
	ki := ed.firstChild("KeyInfo", xmldsigNS)
	if ki == nil {
		return nil, fmt.Errorf("%w: EncryptedData has no KeyInfo", ErrMalformedKey)
	}
	for _, ek := range ki.childrenNamed("EncryptedKey", xmlencNS) {
		var kalg string
		if m := ek.firstChild("EncryptionMethod", xmlencNS); m != nil {
			kalg, _ = m.attr("Algorithm")
		}
		if kalg != algRSA15 && kalg != algRSAOAEP {
			return nil, fmt.Errorf("%w: XML Encryption key transport %q", ErrUnsupportedAlgorithm, kalg)
		}
		for _, der := range x509DataCertificates(ek) {
			named = append(named, thumbprint(der))
			ck, ok := matchCertificate(der, certs)
			if !ok {
				continue
			}
			wrapped, err := cipherValue(ek)
			if err != nil {
				return nil, err
			}
			sessionKey, err := unwrapSessionKey(ck.PrivateKey, wrapped, kalg == algRSAOAEP, keyLen)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate %s: %w", ErrMalformedKey, thumbprint(der), errCertDecrypt)
			}
			plain, err := decryptCBCISO10126(sessionKey, ct)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate %s: %w", ErrMalformedKey, thumbprint(der), errCertDecrypt)
			}
			n, err := parseNode(plain)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate %s: %w", ErrMalformedKey, thumbprint(der), errCertDecrypt)
			}
			stripFormatting(n)
			return n, nil
		}
	}
	if len(named) == 0 {
		return nil, fmt.Errorf("%w: the master key is encrypted to a certificate that the key XML does not name (no X509Certificate in its EncryptedKey)", ErrUnsupportedProtection)
	}
	return nil, fmt.Errorf("%w: the master key is encrypted to a certificate with thumbprint %s that was not given (--cert)", ErrUnsupportedProtection, strings.Join(named, ", "))
}

// cipherValue decodes n/CipherData/CipherValue.
func cipherValue(n *node) ([]byte, error) {
	cd := n.firstChild("CipherData", xmlencNS)
	if cd == nil {
		return nil, fmt.Errorf("%w: <%s> has no CipherData", ErrMalformedKey, n.name.Local)
	}
	cv := cd.firstChild("CipherValue", xmlencNS)
	if cv == nil {
		return nil, fmt.Errorf("%w: <%s> has no CipherValue (CipherReference is not supported)", ErrMalformedKey, n.name.Local)
	}
	b, err := decodeBase64Text(cv.value())
	if err != nil {
		return nil, fmt.Errorf("%w: CipherValue is not valid base64", ErrMalformedKey)
	}
	return b, nil
}

// x509DataCertificates returns the DER certificates in ek/KeyInfo/X509Data/X509Certificate.
func x509DataCertificates(ek *node) [][]byte {
	var out [][]byte
	ki := ek.firstChild("KeyInfo", xmldsigNS)
	if ki == nil {
		return nil
	}
	for _, xd := range ki.childrenNamed("X509Data", xmldsigNS) {
		for _, xc := range xd.childrenNamed("X509Certificate", xmldsigNS) {
			if der, err := decodeBase64Text(xc.value()); err == nil && len(der) > 0 {
				out = append(out, der)
			}
		}
	}
	return out
}

// matchCertificate finds the given certificate with a private key that is der (same
// thumbprint), or else one whose public key is der's.
func matchCertificate(der []byte, certs []CertificateKey) (CertificateKey, bool) {
	for _, c := range certs {
		if c.PrivateKey != nil && c.Certificate != nil && bytes.Equal(c.Certificate.Raw, der) {
			return c, true
		}
	}
	named, err := x509.ParseCertificate(der)
	if err != nil {
		return CertificateKey{}, false
	}
	for _, c := range certs {
		if c.PrivateKey != nil && samePublicKey(named.PublicKey, c.PrivateKey.Public()) {
			return c, true
		}
	}
	return CertificateKey{}, false
}

// unwrapSessionKey decrypts the AES session key. PKCS #1 v1.5 uses the implicit-rejection
// option (a padding error yields random bytes, so it fails later, in constant time).
func unwrapSessionKey(priv crypto.Decrypter, wrapped []byte, oaep bool, keyLen int) ([]byte, error) {
	//lint:ignore SA1019 .NET's EncryptedXml writes rsa-1_5 key transport; reading existing key rings needs it.
	var opts crypto.DecrypterOpts = &rsa.PKCS1v15DecryptOptions{SessionKeyLen: keyLen}
	if oaep {
		opts = &rsa.OAEPOptions{Hash: crypto.SHA1}
	}
	k, err := priv.Decrypt(rand.Reader, wrapped, opts)
	if err != nil {
		return nil, err
	}
	if len(k) != keyLen {
		return nil, errCertDecrypt
	}
	return k, nil
}

// decryptCBCISO10126 decrypts IV || ciphertext with AES-CBC and removes ISO 10126 padding, which
// only the last byte (the pad length, 1 to 16) describes; the other pad bytes are random.
func decryptCBCISO10126(key, data []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(data) < 2*aes.BlockSize || len(data)%aes.BlockSize != 0 {
		return nil, errCertDecrypt
	}
	iv, ct := data[:aes.BlockSize], data[aes.BlockSize:]
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, errCertDecrypt
	}
	return plain[:len(plain)-pad], nil
}

// EncryptKeyWithCertificate returns the key element with its master key encrypted to cert, as a
// node configured with ProtectKeysWithCertificate writes it (CertificateXmlEncryptor +
// EncryptedXml.Encrypt): every element marked requiresEncryption is replaced by an
// <encryptedSecret> holding W3C XML Encryption <EncryptedData> (AES-256-CBC with ISO 10126
// padding, the session key wrapped with RSA PKCS #1 v1.5, the certificate in X509Data). The
// result is compact. cert must hold an RSA public key.
func EncryptKeyWithCertificate(element []byte, cert *x509.Certificate) ([]byte, error) {
	return encryptKeyWithCertificate(element, cert, false)
}

func encryptKeyWithCertificate(element []byte, cert *x509.Certificate, oaep bool) ([]byte, error) {
	if cert == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrBadCertificate)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: certificate key is %T; XML Encryption key transport needs RSA", ErrBadCertificate, cert.PublicKey)
	}
	n, err := parseNode(element)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedXML, err)
	}
	stripFormatting(n)
	count := 0
	var walk func(n *node) (*node, error)
	walk = func(n *node) (*node, error) {
		if requiresEncryption(n) {
			count++
			return encryptToCertificate(n, cert, pub, oaep)
		}
		for i, c := range n.children {
			if c.kind != elementNode {
				continue
			}
			r, err := walk(c)
			if err != nil {
				return nil, err
			}
			n.children[i] = r
		}
		return n, nil
	}
	out, err := walk(n)
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, fmt.Errorf("%w: no element is marked requiresEncryption", ErrMalformedKey)
	}
	return out.compact(), nil
}

// requiresEncryption is XmlExtensions.IsMarkedAsRequiringEncryption: the
// {http://schemas.asp.net/2015/03/dataProtection}requiresEncryption attribute read as
// xsd:boolean.
func requiresEncryption(n *node) bool {
	v, ok := n.attrInNS("requiresEncryption", dataProtectionNS)
	if !ok {
		return false
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		return true
	}
	return false
}

// encryptToCertificate builds the encryptedSecret element for one marked element.
func encryptToCertificate(plainElem *node, cert *x509.Certificate, pub *rsa.PublicKey, oaep bool) (*node, error) {
	plaintext := standaloneOuterXML(plainElem)
	sessionKey := make([]byte, 32)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(sessionKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sessionKey)
	if err != nil {
		return nil, err
	}
	// ISO 10126 padding: random bytes, the last one the pad length.
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := make([]byte, len(plaintext)+pad)
	copy(padded, plaintext)
	if _, err := rand.Read(padded[len(plaintext):]); err != nil {
		return nil, err
	}
	padded[len(padded)-1] = byte(pad)
	data := make([]byte, aes.BlockSize+len(padded))
	copy(data, iv)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data[aes.BlockSize:], padded)

	keyAlg := algRSA15
	var wrapped []byte
	if oaep {
		keyAlg = algRSAOAEP
		wrapped, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, sessionKey, nil)
	} else {
		//lint:ignore SA1019 .NET's EncryptedXml.Encrypt(element, certificate) writes rsa-1_5; a node reading our keys expects it.
		wrapped, err = rsa.EncryptPKCS1v15(rand.Reader, pub, sessionKey)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: encrypting to certificate: %w", err)
	}

	b64 := base64.StdEncoding.EncodeToString
	el := func(local string, attrs []xml.Attr, children ...*node) *node {
		return &node{kind: elementNode, name: xml.Name{Local: local}, attrs: attrs, children: children}
	}
	text := func(s string) *node { return &node{kind: textNode, text: s} }
	attr := func(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }
	method := func(alg string) *node { return el("EncryptionMethod", []xml.Attr{attr("Algorithm", alg)}) }
	cipherData := func(v []byte) *node {
		return el("CipherData", nil, el("CipherValue", nil, text(b64(v))))
	}
	encryptedData := el("EncryptedData", []xml.Attr{attr("Type", typeElement), attr("xmlns", xmlencNS)},
		method(algAES256CBC),
		el("KeyInfo", []xml.Attr{attr("xmlns", xmldsigNS)},
			el("EncryptedKey", []xml.Attr{attr("xmlns", xmlencNS)},
				method(keyAlg),
				el("KeyInfo", []xml.Attr{attr("xmlns", xmldsigNS)},
					el("X509Data", nil, el("X509Certificate", nil, text(b64(cert.Raw))))),
				cipherData(wrapped))),
		cipherData(data))
	secret := el("encryptedSecret", []xml.Attr{attr("decryptorType", encryptedXmlDecryptorAQN), attr("xmlns", dataProtectionNS)},
		encryptedData)
	// Re-parse so that namespaces resolve like any element read from storage.
	return parseNode(secret.compact())
}

// standaloneOuterXML serializes an element alone, as XmlElement.OuterXml does for the copy that
// EncryptedXml encrypts when a node creates a key: the requiresEncryption marker carries no
// declared prefix there, so XmlTextWriter generates "d1p1" and declares it after the attribute.
func standaloneOuterXML(n *node) []byte {
	c := n.clone()
	for i, a := range c.attrs {
		if c.attrNamespace(i) != dataProtectionNS || a.Name.Local != "requiresEncryption" {
			continue
		}
		old := a.Name.Space
		c.attrs[i].Name.Space = "d1p1"
		attrs, attrNS := c.attrs[:0:0], c.attrNS[:0:0]
		for j, d := range c.attrs {
			if d.Name.Space == "xmlns" && d.Name.Local == old {
				continue
			}
			attrs, attrNS = append(attrs, d), append(attrNS, c.attrNamespace(j))
		}
		c.attrs = append(attrs, xml.Attr{Name: xml.Name{Space: "xmlns", Local: "d1p1"}, Value: dataProtectionNS})
		c.attrNS = append(attrNS, xmlnsNamespace)
		break
	}
	return c.compact()
}
