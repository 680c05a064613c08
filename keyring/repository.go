package keyring

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// SplitRepository returns the child elements of a repository document, each in compact form:
// the layout of ASP.NET Core's Azure Blob repository (<repository> holding every element), or
// any document with one root. Namespace declarations of the root that a child uses are copied
// onto the child, so each element stands alone. It returns an error wrapping [ErrMalformedXML]
// if doc is not well-formed.
func SplitRepository(doc []byte) ([][]byte, error) {
	root, err := parseNodeMax(doc, maxRepositoryBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedXML, err)
	}
	stripFormatting(root)
	var out [][]byte
	for _, c := range root.childElements() {
		out = append(out, withRootNamespaces(c, root).compact())
	}
	return out, nil
}

// withRootNamespaces copies onto c the root's namespace declarations for prefixes c's subtree
// uses but c does not declare itself. (A declaration a descendant shadows is harmless.)
func withRootNamespaces(c, root *node) *node {
	used := map[string]bool{}
	collectPrefixes(c, used)
	var extra []xml.Attr
	for _, d := range root.attrs {
		var prefix string
		switch {
		case d.Name.Space == "xmlns":
			prefix = d.Name.Local
		case d.Name.Space == "" && d.Name.Local == "xmlns":
			prefix = ""
		default:
			continue
		}
		if used[prefix] && !declares(c, prefix) {
			extra = append(extra, d)
		}
	}
	if len(extra) == 0 {
		return c
	}
	cc := c.clone()
	for _, d := range extra {
		cc.attrs = append(cc.attrs, d)
		cc.attrNS = append(cc.attrNS, xmlnsNamespace)
	}
	return cc
}

func declares(n *node, prefix string) bool {
	for _, a := range n.attrs {
		if (prefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns") || (a.Name.Space == "xmlns" && a.Name.Local == prefix) {
			return true
		}
	}
	return false
}

// collectPrefixes records the prefixes of the element and attribute names in n's subtree ("" for
// unprefixed elements, which use the default namespace).
func collectPrefixes(n *node, used map[string]bool) {
	if n.kind != elementNode {
		return
	}
	used[n.name.Space] = true
	for _, a := range n.attrs {
		if a.Name.Space != "" && a.Name.Space != "xmlns" {
			used[a.Name.Space] = true
		}
	}
	for _, c := range n.children {
		collectPrefixes(c, used)
	}
}

// ParseRepository reads a repository document ([SplitRepository]) into a ring ([ParseElements]).
func ParseRepository(doc []byte, opts ParseOptions) (*Ring, error) {
	elements, err := SplitRepository(doc)
	if err != nil {
		return nil, err
	}
	return ParseElements(elements, opts)
}

// MarshalRepository returns a repository document holding the elements, as the Azure Blob
// repository (AzureBlobXmlRepository) writes its blob with XDocument.Save(stream,
// SaveOptions.DisableFormatting): the UTF-8 byte order mark, the XML declaration, then
// <repository> with every element as a child in compact form, no white space.
func MarshalRepository(elements [][]byte) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(utf8BOM)
	b.WriteString(xmlDeclaration)
	if len(elements) == 0 {
		b.WriteString("<repository />")
		return b.Bytes(), nil
	}
	b.WriteString("<repository>")
	for i, e := range elements {
		n, err := parseNode(e)
		if err != nil {
			return nil, fmt.Errorf("%w: element %d: %w", ErrMalformedXML, i, err)
		}
		stripFormatting(n)
		b.Write(n.compact())
	}
	b.WriteString("</repository>")
	return b.Bytes(), nil
}
