package main

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/spf13/cobra/doc"
	"github.com/stretchr/testify/require"
)

// The CLI reference in docs/cli is generated from the cobra commands; regenerate it with
//
//	go generate ./cmd/solvequeue
//
// which runs TestCLIReference with updateCLIDocsEnv set.
//go:generate env SOLVEQUEUE_UPDATE_CLI_DOCS=1 go test -count=1 -run ^TestCLIReference$ .

// cliDocsDir is docs/cli, seen from this package's directory.
const cliDocsDir = "../../docs/cli"

// updateCLIDocsEnv, set to 1, makes TestCLIReference write docs/cli instead of checking it.
const updateCLIDocsEnv = "SOLVEQUEUE_UPDATE_CLI_DOCS"

// genCLIReference writes one Markdown page per visible command into dir, with no date line, so
// that the same commands always give the same files.
func genCLIReference(dir string) error {
	root := newRootCmd(&Env{Getenv: func(string) string { return "" }})
	root.DisableAutoGenTag = true
	return doc.GenMarkdownTree(root, dir)
}

// readMarkdownDir returns every .md file of dir by name.
func readMarkdownDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.md"))
	require.NoError(t, err)
	files := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		files[filepath.Base(p)] = string(data)
	}
	return files
}

// TestCLIReference regenerates the CLI reference into a temporary directory and fails when
// docs/cli differs from it: a command, a flag or a help text changed without the reference.
func TestCLIReference(t *testing.T) {
	if os.Getenv(updateCLIDocsEnv) == "1" {
		require.NoError(t, os.RemoveAll(cliDocsDir))
		require.NoError(t, os.MkdirAll(cliDocsDir, 0o755))
		require.NoError(t, genCLIReference(cliDocsDir))
		t.Logf("wrote %s", cliDocsDir)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, genCLIReference(dir))
	want := readMarkdownDir(t, dir)
	got := readMarkdownDir(t, cliDocsDir)
	require.GreaterOrEqual(t, len(want), 10, "a page per command")

	const regenerate = "docs/cli is stale: regenerate it with `go generate ./cmd/solvequeue` (or " +
		updateCLIDocsEnv + "=1 go test -run TestCLIReference ./cmd/solvequeue) and commit it"
	names := func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for n := range m {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, names(want), names(got), regenerate)
	for name, text := range want {
		require.Equal(t, text, got[name], "%s: %s", name, regenerate)
	}
}
