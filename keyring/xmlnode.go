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

// maxElementBytes bounds one element's size and maxDepth its nesting, so hostile input cannot
// exhaust memory or stack.
const (
	maxElementBytes = 1 << 20
	maxDepth        = 64
)

// node is a minimal XML tree that keeps what XElement keeps and writes it back the way .NET's
// XmlWriter does: prefixes and attribute order are preserved, comments are kept.
type node struct {
	kind     nodeKind
	name     xml.Name // Space holds the prefix as written (RawToken), not the namespace URI
	attrs    []xml.Attr
	children []*node
	text     string // text or comment content
}

type nodeKind int

const (
	elementNode nodeKind = iota + 1
	textNode
	commentNode
)

// parseNode parses exactly one root element, with an optional XML declaration, comments and
// white space around it. It rejects DTDs and processing instructions other than the declaration.
func parseNode(data []byte) (*node, error) {
	if len(data) > maxElementBytes {
		return nil, fmt.Errorf("xml: element is larger than %d bytes", maxElementBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root *node
	var stack []*node
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
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// elements returns the child elements with the given local name (any prefix).
func (n *node) elements(local string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.kind == elementNode && c.name.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// element returns the first child element with the given local name, or nil.
func (n *node) element(local string) *node {
	for _, c := range n.children {
		if c.kind == elementNode && c.name.Local == local {
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

// compact writes the element as XElement.ToString(SaveOptions.DisableFormatting) does.
func (n *node) compact() []byte {
	var b bytes.Buffer
	n.write(&b, false, 0)
	return b.Bytes()
}

// indented writes the element as XElement.Save does to a file: the XML declaration and the
// element indented by two spaces, with CRLF-free "\n" line ends... see fileBytes for the
// declaration.
func (n *node) indented() []byte {
	var b bytes.Buffer
	n.write(&b, true, 0)
	return b.Bytes()
}

// write serializes n. With indent, child nodes of an element whose children are all elements or
// comments (no text) go on their own lines, as XmlWriter with Indent=true does; an element with
// any non-white-space text is written inline.
func (n *node) write(b *bytes.Buffer, indent bool, depth int) {
	switch n.kind {
	case textNode:
		escapeText(b, n.text)
		return
	case commentNode:
		b.WriteString("<!--")
		b.WriteString(n.text)
		b.WriteString("-->")
		return
	}
	b.WriteByte('<')
	b.WriteString(qname(n.name))
	for _, a := range n.attrs {
		b.WriteByte(' ')
		b.WriteString(qname(a.Name))
		b.WriteString(`="`)
		escapeAttr(b, a.Value)
		b.WriteByte('"')
	}
	children := n.children
	structured := indent && !hasText(children)
	if structured {
		children = withoutWhiteSpace(children)
	}
	if len(children) == 0 {
		b.WriteString(" />")
		return
	}
	b.WriteByte('>')
	for _, c := range children {
		if structured {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat("  ", depth+1))
		}
		c.write(b, indent && structured, depth+1)
	}
	if structured {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("  ", depth))
	}
	b.WriteString("</")
	b.WriteString(qname(n.name))
	b.WriteByte('>')
}

func hasText(children []*node) bool {
	for _, c := range children {
		if c.kind == textNode && strings.TrimSpace(c.text) != "" {
			return true
		}
	}
	return false
}

func withoutWhiteSpace(children []*node) []*node {
	out := make([]*node, 0, len(children))
	for _, c := range children {
		if c.kind != textNode {
			out = append(out, c)
		}
	}
	return out
}

// escapeText escapes as XmlWriter does in element content: & < > and, to keep line ends
// stable across platforms, \r.
func escapeText(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
}

// escapeAttr escapes as XmlWriter does in double-quoted attribute values.
func escapeAttr(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
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
			b.WriteRune(r)
		}
	}
}

// xmlDeclaration is what XElement.Save writes first.
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

// FileXML returns one element as FileSystemXmlRepository writes a key file (XElement.Save): the
// XML declaration, then the element indented by two spaces, no byte order mark, no final newline.
func FileXML(element []byte) ([]byte, error) {
	n, err := parseNode(element)
	if err != nil {
		return nil, err
	}
	stripFormatting(n)
	var b bytes.Buffer
	b.WriteString(xmlDeclaration)
	b.WriteByte('\n')
	n.write(&b, true, 0)
	return b.Bytes(), nil
}

// stripFormatting removes white-space-only text between elements (where an element has no other
// text), as XElement.Load without PreserveWhitespace does.
func stripFormatting(n *node) {
	if n.kind != elementNode {
		return
	}
	if !hasText(n.children) {
		n.children = withoutWhiteSpace(n.children)
	}
	for _, c := range n.children {
		stripFormatting(c)
	}
}
