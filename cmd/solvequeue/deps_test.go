package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testOnlyPackages are packages that belong in tests and never in the binary: each one costs a
// newcomer's first `go run` its compile time and the binary its size, for nothing it runs.
var testOnlyPackages = []string{
	"testing",
	"github.com/stretchr/testify",
	"pgregory.net/rapid",
	"github.com/chromedp",
	"github.com/solvequeue/solvequeue/internal/browsertest",
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest",
	"github.com/solvequeue/solvequeue/worker/workertest",
}

// TestCLIBinaryLinksNoTestPackage lists the packages the binary is built from (go list reads
// only import lines, so this takes about a second) and requires none of them to be test-only.
func TestCLIBinaryLinksNoTestPackage(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/solvequeue/solvequeue/worker", "the list is the binary's dependencies")
	for _, dep := range deps {
		for _, banned := range testOnlyPackages {
			require.False(t, dep == banned || strings.HasPrefix(dep, banned+"/"),
				"the binary links %s, which only tests need: move what imports it into a _test.go file", dep)
		}
	}
}
