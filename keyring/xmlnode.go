package keyring

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxElementBytes bounds one element's size, maxRepositoryBytes a whole repository document
// and maxDepth the nesting, so hostile input cannot exhaust memory or stack.
const (
	maxElementBytes    = 1 << 20
	maxRepositoryBytes = 64 << 20
	maxDepth           = 64
)

// node is a minimal XML tree that keeps what XElement keeps and writes it back the way .NET's
// XmlWriter does: prefixes, namespace declarations and attribute order are preserved, comments
// are kept.
type node struct {
	kind     nodeKind
	name     xml.Name // Space holds the prefix as written (RawToken), not the namespace URI
	ns       string   // the element's namespace URI, resolved from the declarations in scope
	attrs    []xml.Attr
	attrNS   []string // the namespace URI of each attribute in attrs ("" for unprefixed ones)
	children []*node
	text     string // text or comment content
}

type nodeKind int

const (
	elementNode nodeKind = iota + 1
	textNode
	commentNode
)

// Namespace URIs bound to the reserved prefixes.
const (
	xmlNamespace   = "http://www.w3.org/XML/1998/namespace"
	xmlnsNamespace = "http://www.w3.org/2000/xmlns/"
)

// parseNode parses exactly one root element, with an optional XML declaration, comments and
// white space around it. It rejects DTDs, processing instructions other than the declaration,
// undeclared prefixes and duplicate attributes, as .NET's XmlReader does.
func parseNode(data []byte) (*node, error) {
	return parseNodeMax(data, maxElementBytes)
}

// parseNodeMax is parseNode with a size limit of maxBytes.
func parseNodeMax(data []byte, maxBytes int) (*node, error) {
	if len(data) > maxBytes {
		return nil, fmt.Errorf("xml: document is larger than %d bytes", maxBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root *node
	var stack []*node
	var scopes []map[string]string // namespace declarations of each open element
	lookup := func(prefix string) (string, bool) {
		switch prefix {
		case "xml":
			return xmlNamespace, true
		case "xmlns":
			return xmlnsNamespace, true
		}
		for i := len(scopes) - 1; i >= 0; i-- {
			if uri, ok := scopes[i][prefix]; ok {
				return uri, true
			}
		}
		return "", prefix == ""
	}
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, errors.New("xml: more than one root element")
			}
			if len(stack) >= maxDepth {
				return nil, errors.New("xml: elements nested too deeply")
			}
			n := &node{kind: elementNode, name: t.Name, attrs: append([]xml.Attr(nil), t.Attr...)}
			scope := map[string]string{}
			seen := make(map[xml.Name]bool, len(n.attrs))
			for _, a := range n.attrs {
				if seen[a.Name] {
					return nil, fmt.Errorf("xml: duplicate attribute %s", qname(a.Name))
				}
				seen[a.Name] = true
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					scope[""] = a.Value
				case a.Name.Space == "xmlns":
					if a.Value == "" {
						return nil, fmt.Errorf("xml: empty namespace for prefix %s", a.Name.Local)
					}
					scope[a.Name.Local] = a.Value
				}
			}
			scopes = append(scopes, scope)
			uri, ok := lookup(t.Name.Space)
			if !ok {
				return nil, fmt.Errorf("xml: undeclared prefix %s", t.Name.Space)
			}
			n.ns = uri
			n.attrNS = make([]string, len(n.attrs))
			for i, a := range n.attrs {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					n.attrNS[i] = xmlnsNamespace
				case a.Name.Space != "":
					uri, ok := lookup(a.Name.Space)
					if !ok {
						return nil, fmt.Errorf("xml: undeclared prefix %s", a.Name.Space)
					}
					n.attrNS[i] = uri
				}
			}
			if len(stack) == 0 {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("xml: unexpected end element")
			}
			top := stack[len(stack)-1]
			if top.name != t.Name {
				return nil, fmt.Errorf("xml: element <%s> closed by </%s>", qname(top.name), qname(t.Name))
			}
			stack = stack[:len(stack)-1]
			scopes = scopes[:len(scopes)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, errors.New("xml: text outside the root element")
				}
				continue
			}
			if !utf8.Valid(t) {
				return nil, errors.New("xml: invalid UTF-8")
			}
			p := stack[len(stack)-1]
			if k := len(p.children); k > 0 && p.children[k-1].kind == textNode {
				p.children[k-1].text += string(t)
			} else {
				p.children = append(p.children, &node{kind: textNode, text: string(t)})
			}
		case xml.Comment:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, &node{kind: commentNode, text: string(t)})
			}
		case xml.ProcInst:
			if t.Target != "xml" || root != nil || len(stack) > 0 {
				return nil, fmt.Errorf("xml: unexpected processing instruction %q", t.Target)
			}
		case xml.Directive:
			return nil, errors.New("xml: DTDs and directives are not allowed")
		}
	}
	if root == nil {
		return nil, errors.New("xml: no root element")
	}
	if len(stack) != 0 {
		return nil, errors.New("xml: unexpected end of input")
	}
	return root, nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// attr returns the value of the unprefixed attribute local, and whether it exists.
func (n *node) attr(local string) (string, bool) {
	return n.attrInNS(local, "")
}

// attrInNS returns the value of the attribute with the given local name and namespace URI.
func (n *node) attrInNS(local, ns string) (string, bool) {
	for i, a := range n.attrs {
		if a.Name.Local == local && n.attrNamespace(i) == ns && !isNamespaceDecl(a.Name) {
			return a.Value, true
		}
	}
	return "", false
}

func (n *node) attrNamespace(i int) string {
	if i < len(n.attrNS) {
		return n.attrNS[i]
	}
	return ""
}

func isNamespaceDecl(name xml.Name) bool {
	return name.Space == "xmlns" || (name.Space == "" && name.Local == "xmlns")
}

// is reports whether n is an element with the given local name and namespace URI.
func (n *node) is(local, ns string) bool {
	return n != nil && n.kind == elementNode && n.name.Local == local && n.ns == ns
}

// elements returns the child elements with the given local name and no namespace, as
// XContainer.Elements(XName) does.
func (n *node) elements(local string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.is(local, "") {
			out = append(out, c)
		}
	}
	return out
}

// element returns the first child element with the given local name and no namespace, or nil,
// as XContainer.Element(XName) does.
func (n *node) element(local string) *node {
	for _, c := range n.children {
		if c.is(local, "") {
			return c
		}
	}
	return nil
}

// childElements returns all child elements.
func (n *node) childElements() []*node {
	var out []*node
	for _, c := range n.children {
		if c.kind == elementNode {
			out = append(out, c)
		}
	}
	return out
}

// value is XElement.Value: the concatenation of all descendant text, comments excluded.
func (n *node) value() string {
	var b strings.Builder
	var walk func(*node)
	walk = func(m *node) {
		for _, c := range m.children {
			switch c.kind {
			case textNode:
				b.WriteString(c.text)
			case elementNode:
				walk(c)
			}
		}
	}
	walk(n)
	return b.String()
}

// clone returns a deep copy of n.
func (n *node) clone() *node {
	c := *n
	c.attrs = append([]xml.Attr(nil), n.attrs...)
	c.attrNS = append([]string(nil), n.attrNS...)
	c.children = make([]*node, len(n.children))
	for i, ch := range n.children {
		c.children[i] = ch.clone()
	}
	return &c
}

// compact writes the element as XElement.ToString(SaveOptions.DisableFormatting) does.
func (n *node) compact() []byte {
	w := xmlWriter{}
	w.element(n)
	return w.b.Bytes()
}

// newLine is XmlWriterSettings.NewLineChars on the platforms dpkeyring targets
// (Environment.NewLine on Linux; .NET on Windows writes "\r\n").
const newLine = "\n"

// xmlWriter reproduces .NET's XmlEncodedRawTextWriter(Indent) with NewLineHandling.Replace: an
// element's children go on their own lines, indented by two spaces, until the element holds
// text ("mixed content"), after which nothing more is indented inside it.
type xmlWriter struct {
	b          bytes.Buffer
	indent     bool
	level      int
	mixed      bool
	mixedStack []bool
	textPos    int // buffer position just after the last text written
	contentPos int // buffer position just after the last start tag's '>'
}

func (w *xmlWriter) writeIndent() {
	w.b.WriteString(newLine)
	for range w.level {
		w.b.WriteString("  ")
	}
}

func (w *xmlWriter) element(n *node) {
	if w.indent && !w.mixed && w.textPos != w.b.Len() {
		w.writeIndent()
	}
	w.level++
	w.mixedStack = append(w.mixedStack, w.mixed)
	w.b.WriteByte('<')
	w.b.WriteString(qname(n.name))
	for _, a := range n.attrs {
		w.b.WriteByte(' ')
		w.b.WriteString(qname(a.Name))
		w.b.WriteString(`="`)
		escapeAttr(&w.b, a.Value)
		w.b.WriteByte('"')
	}
	if len(n.children) == 0 {
		w.b.WriteString(" />")
		w.level--
		w.mixed = w.mixedStack[len(w.mixedStack)-1]
		w.mixedStack = w.mixedStack[:len(w.mixedStack)-1]
		return
	}
	w.b.WriteByte('>')
	w.contentPos = w.b.Len()
	for _, c := range n.children {
		switch c.kind {
		case textNode:
			w.mixed = true
			escapeText(&w.b, c.text)
			w.textPos = w.b.Len()
		case commentNode:
			if w.indent && !w.mixed && w.textPos != w.b.Len() {
				w.writeIndent()
			}
			w.b.WriteString("<!--")
			w.b.WriteString(c.text)
			w.b.WriteString("-->")
		case elementNode:
			w.element(c)
		}
	}
	w.level--
	if w.indent && !w.mixed && w.contentPos != w.b.Len() && w.textPos != w.b.Len() {
		w.writeIndent()
	}
	w.b.WriteString("</")
	w.b.WriteString(qname(n.name))
	w.b.WriteByte('>')
	w.mixed = w.mixedStack[len(w.mixedStack)-1]
	w.mixedStack = w.mixedStack[:len(w.mixedStack)-1]
}

// escapeText escapes as XmlWriter does in element content: & < > are escaped and, with
// NewLineHandling.Replace, "\r\n" and "\r" become the new-line sequence.
func escapeText(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString(newLine)
		case '\n':
			b.WriteString(newLine)
		default:
			b.WriteByte(c)
		}
	}
}

// escapeAttr escapes as XmlWriter does in double-quoted attribute values.
func escapeAttr(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\r':
			b.WriteString("&#xD;")
		case '\n':
			b.WriteString("&#xA;")
		case '\t':
			b.WriteString("&#x9;")
		default:
			b.WriteByte(c)
		}
	}
}

// utf8BOM is the byte order mark XmlWriter writes first with its default UTF-8 encoding.
const utf8BOM = "\xef\xbb\xbf"

// xmlDeclaration is what XElement.Save and XDocument.Save write after the byte order mark.
const xmlDeclaration = `<?xml version="1.0" encoding="utf-8"?>`

// CompactXML returns one element in the compact form ASP.NET Core's Redis and database
// repositories store (XElement.ToString(SaveOptions.DisableFormatting)): no declaration, no
// indentation. It accepts the file form (declaration, indentation, byte order mark) too.
func CompactXML(element []byte) ([]byte, error) {
	n, err := parseNode(element)
	if err != nil {
		return nil, err
	}
	stripFormatting(n)
	return n.compact(), nil
}

// FileXML returns one element as FileSystemXmlRepository writes a key file (XElement.Save to a
// stream): the UTF-8 byte order mark, the XML declaration, then the element indented by two
// spaces with "\n" line ends (Environment.NewLine on Linux), no final newline.
func FileXML(element []byte) ([]byte, error) {
	n, err := parseNode(element)
	if err != nil {
		return nil, err
	}
	stripFormatting(n)
	w := xmlWriter{indent: true}
	w.b.WriteString(utf8BOM)
	w.textPos = w.b.Len()
	w.b.WriteString(xmlDeclaration)
	w.element(n)
	return w.b.Bytes(), nil
}

// stripFormatting removes white-space-only text nodes, as XElement.Load and XElement.Parse do
// without LoadOptions.PreserveWhitespace (XmlReaderSettings.IgnoreWhitespace).
func stripFormatting(n *node) {
	if n.kind != elementNode {
		return
	}
	kept := n.children[:0]
	for _, c := range n.children {
		if c.kind == textNode && isXMLSpace(c.text) {
			continue
		}
		kept = append(kept, c)
	}
	n.children = kept
	for _, c := range n.children {
		stripFormatting(c)
	}
}

// isXMLSpace reports whether s consists only of XML white space (space, tab, CR, LF).
func isXMLSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}
