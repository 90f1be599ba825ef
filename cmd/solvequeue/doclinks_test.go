package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// readmeMaxBytes is the most the README may weigh: a newcomer reads it in five minutes, and
// everything else lives in docs/.
const readmeMaxBytes = 30 << 10

// issuePattern matches a reference to an issue by number, which a reader cannot follow.
const issuePattern = `(?i)\bissues?\s+#?[0-9]+|(^|[\s(])#[0-9]+\b`

// githubSlug is the anchor GitHub gives a heading: lower case, every character but letters,
// digits, spaces, '-' and '_' dropped, spaces made '-'.
func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// mdProse returns the lines of a Markdown text outside its fenced code blocks.
func mdProse(text string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			out = append(out, line)
		}
	}
	return out
}

// mdAnchors returns the anchors of every heading of a Markdown text, numbered as GitHub numbers
// repeated ones (-1, -2, ...).
func mdAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range mdProse(text) {
		trimmed := strings.TrimLeft(line, "#")
		if trimmed == line || !strings.HasPrefix(trimmed, " ") {
			continue
		}
		slug := githubSlug(trimmed)
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// mdLinks returns the targets of every link and image of a Markdown text, code left out.
func mdLinks(text string) []string {
	inlineCode := regexp.MustCompile("`[^`]*`")
	targets := []*regexp.Regexp{
		regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`), // a Markdown link or image
		regexp.MustCompile(`(?:src|href)="([^"]+)"`),         // an HTML attribute
	}
	var links []string
	for _, line := range mdProse(text) {
		line = inlineCode.ReplaceAllString(line, "")
		for _, re := range targets {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				links = append(links, m[1])
			}
		}
	}
	return links
}

func TestDocsHelpers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ heading, slug string }{
		{"The gateway: AnySolver's API for Python and Node scrapers", "the-gateway-anysolvers-api-for-python-and-node-scrapers"},
		{"`solvequeue dlq redrive [ID...]`", "solvequeue-dlq-redrive-id"},
		{"More in docs/", "more-in-docs"},
		{"Past one Redis: Sentinel and Cluster", "past-one-redis-sentinel-and-cluster"},
		{"solvequeue fake-anysolver", "solvequeue-fake-anysolver"},
	} {
		require.Equal(t, tt.slug, githubSlug(tt.heading), tt.heading)
	}
	doc := "# A\n## B b\n```sh\n# not a heading\n```\n## B b\n#nope\nsee [x](y.md#b-b) and `[z](not-a-link)` ![i](img.png) <img src=\"p.png\">\n"
	require.Equal(t, map[string]bool{"a": true, "b-b": true, "b-b-1": true}, mdAnchors(doc))
	require.Equal(t, []string{"y.md#b-b", "img.png", "p.png"}, mdLinks(doc))
	issueRE := regexp.MustCompile(issuePattern)
	require.True(t, issueRE.MatchString("as issue 16 asks"))
	require.True(t, issueRE.MatchString("fixed in #1104."))
	require.False(t, issueRE.MatchString("https://github.com/hibiken/asynq/issues/1104"))
	require.False(t, issueRE.MatchString("see [x](#b-b) and C#"))
}

// TestDocsLinks checks every relative link of README.md and docs/ (the CLI reference included):
// the file or directory it names exists, and so does the heading its anchor names.
func TestDocsLinks(t *testing.T) {
	t.Parallel()
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		anchors[path] = mdAnchors(string(data))
		return anchors[path]
	}
	checked := 0
	for _, file := range markdownFiles(t) {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, link := range mdLinks(string(data)) {
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			checked++
			target, anchor, _ := strings.Cut(link, "#")
			path := file
			if target != "" {
				path = filepath.Join(filepath.Dir(file), target)
				_, err := os.Stat(path)
				require.NoError(t, err, "%s links to %s, which does not exist", file, link)
			}
			if anchor != "" && strings.HasSuffix(path, ".md") {
				require.True(t, anchorsOf(path)[anchor], "%s links to %s: %s has no heading #%s", file, link, path, anchor)
			}
		}
	}
	require.Greater(t, checked, 50, "the links were found")
}

// TestDocsNoIssueNumbers checks that README.md and docs/ never name an issue by its number,
// which a reader of the repository cannot look up.
func TestDocsNoIssueNumbers(t *testing.T) {
	t.Parallel()
	issueRE := regexp.MustCompile(issuePattern)
	for _, file := range markdownFiles(t) {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for i, line := range strings.Split(string(data), "\n") {
			require.False(t, issueRE.MatchString(line), "%s:%d names an issue by number: %s", file, i+1, line)
			require.NotContains(t, line, "DESIGN.md", "%s:%d: DESIGN.md is not in the repository", file, i+1)
		}
	}
}

// TestReadmeShort checks that the README stays a five-minute read whose first screen names the
// gateway as the way in for Python and Node scrapers.
func TestReadmeShort(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	require.LessOrEqual(t, len(doc), readmeMaxBytes, "README.md is %d bytes: move detail to docs/", len(doc))
	intro := doc[:strings.Index(doc, "\n## ")]
	require.Regexp(t, `(?s)Python or Node.*\[the gateway\]`, intro, "the first screen's map names the gateway")
	require.Contains(t, docs(t), "### Layout", "the design notes keep a drawing of the layout")
}
