package yamlfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/solvequeue/solvequeue/internal/yamlfile"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		line      int    // the error's line; -1 for no error
		want      string // the error's message, or the root's first key
	}{
		{"one document", "a: 1\n", -1, "a"},
		{"JSON", `{"b": 2}`, -1, "b"},
		{"empty", "", -1, ""},
		{"comment only", "# nothing\n", -1, ""},
		{"second document", "a: 1\n---\nb: 2\n", 2, "a test file holds one YAML document; this is a second"},
		{"syntax", "a:\n  b: 1\n c", 2, "did not find expected key"},
		{"too large", string(make([]byte, 65)), 0, "a test file must stay under 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, err := yamlfile.Decode("f.yaml", "test file", []byte(tt.src), 64)
			if tt.line < 0 {
				require.NoError(t, err)
				if tt.want == "" {
					require.Nil(t, root)
					return
				}
				require.Equal(t, tt.want, root.Content[0].Value)
				return
			}
			var yerr *yamlfile.Error
			require.ErrorAs(t, err, &yerr)
			require.Equal(t, "f.yaml", yerr.File)
			require.Equal(t, tt.line, yerr.Line, "error: %v", err)
			require.Contains(t, yerr.Msg, tt.want)
		})
	}
}

func TestEach(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
	}{
		{"mapping", "a: 1\nb: &x 2\nc: *x\n", ""},
		{"key twice", "a: 1\nb: 2\na: 3\n", `f.yaml: line 3: top: key "a" is set twice (first on line 1)`},
		{"not a mapping", "- a\n", "f.yaml: line 1: top: want a mapping, got a list"},
		{"key not a name", "? [a]\n: 1\n", "f.yaml: line 1: top: want a plain name as key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, err := yamlfile.Decode("f.yaml", "test file", []byte(tt.src), 1<<10)
			require.NoError(t, err)
			var got []string
			err = yamlfile.Each("f.yaml", root, "top", func(k, v *yaml.Node) error {
				got = append(got, k.Value+"="+v.Value)
				return nil
			})
			if tt.want != "" {
				require.EqualError(t, err, tt.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{"a=1", "b=2", "c=2"}, got, "aliases followed")
		})
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(path, make([]byte, 100), 0o600))
	data, err := yamlfile.ReadFile(path, 10)
	require.NoError(t, err)
	require.Len(t, data, 11, "one byte past the limit, so Decode refuses it")
	_, err = yamlfile.ReadFile(filepath.Join(t.TempDir(), "missing.yaml"), 10)
	require.ErrorIs(t, err, os.ErrNotExist)
}
