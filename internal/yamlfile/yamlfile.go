// Package yamlfile is the one strict reader of every YAML file solvequeue reads (the policy file,
// the gateway's keys file): one document only, repeated keys refused, and every error naming the
// file and line at fault. What the keys of a file mean belongs to the file's own reader.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a file a reader refused, with the line at fault.
type Error struct {
	// File is the name the file was read under: its path, or the name given to the parser.
	File string
	// Line is 1-based; 0 when the fault has no line.
	Line int
	// Msg says what is wrong and, where it can, what would be right.
	Msg string
}

// Error returns "file: line N: message", or "file: message" without a line.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errorf returns an *Error at n's line (no line when n is nil).
func Errorf(file string, n *yaml.Node, format string, args ...any) *Error {
	e := &Error{File: file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

// ReadFile reads at most limit+1 bytes of path, so that Decode can refuse a file over limit
// without reading all of it.
func ReadFile(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(limit)+1))
}

// Decode returns the root node of the one YAML document in data, or nil for an empty file. kind
// names the file in messages ("policy file"); a file over limit bytes is refused unread. It
// never panics: a panic in the YAML library becomes an *Error.
func Decode(file, kind string, data []byte, limit int) (root *yaml.Node, err error) {
	if len(data) > limit {
		return nil, &Error{File: file, Msg: fmt.Sprintf("a %s must stay under %d bytes", kind, limit)}
	}
	// The YAML library is not ours; a panic in it must not take the caller down.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, &Error{File: file, Msg: fmt.Sprintf("cannot read YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, err)
	default:
		return nil, &Error{File: file, Line: next.Line, Msg: fmt.Sprintf("a %s holds one YAML document; this is a second", kind)}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// yamlLine splits "yaml: line 3: msg" into 3 and "msg".
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxError turns an error of the YAML library into an *Error with the line it names.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return &Error{File: file, Line: n, Msg: m[2]}
		}
	}
	return &Error{File: file, Msg: msg}
}

// Deref follows an alias to its anchored node.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is YAML's null (an empty value, "~" or "null").
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Each calls fn for every key and value of mapping n, aliases followed, refusing anything but
// a mapping, keys that are not plain names and a key set twice. what names n in messages.
func Each(file string, n *yaml.Node, what string, fn func(k, v *yaml.Node) error) error {
	n = Deref(n)
	if n.Kind != yaml.MappingNode {
		return Errorf(file, n, "%s: want a mapping, got %s", what, Describe(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Deref(n.Content[i]), Deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return Errorf(file, k, "%s: want a plain name as key", what)
		}
		if line, dup := seen[k.Value]; dup {
			return Errorf(file, k, "%s: key %q is set twice (first on line %d)", what, k.Value, line)
		}
		seen[k.Value] = k.Line
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Describe names a node's value for an error message: "a mapping", "a list", "nothing" or the
// quoted scalar.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}
