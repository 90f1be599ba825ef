package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// This file keeps README.md and docs/ in step with the code: the classification tables with
// `solvequeue policy`, the configuration tables (docs/configuration.md) with every command's
// flags, the states, the metrics (docs/operating.md) and the alerts with what the worker serves
// and deploy/ defines; and it checks every relative link of README.md and docs/.

func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	return string(data)
}

// markdownFiles returns README.md and every Markdown page under docs/, the CLI reference included.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"../../README.md"}
	err := filepath.WalkDir("../../docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	require.NoError(t, err)
	require.Greater(t, len(files), 10, "README.md and the pages of docs/")
	return files
}

// docs returns the README followed by every page of docs/.
func docs(t *testing.T) string {
	t.Helper()
	var text strings.Builder
	for _, p := range markdownFiles(t) {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		text.WriteString(string(data) + "\n")
	}
	return text.String()
}

// docPage returns one page of docs/, for the tests of sections that live there.
func docPage(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../docs", name))
	require.NoError(t, err)
	return string(data)
}

// readmeSection returns the text under the first heading that starts with heading, up to the
// next heading of the same or a higher level.
func readmeSection(t *testing.T, doc, heading string) string {
	t.Helper()
	level := strings.Index(heading, " ")
	require.Positive(t, level, "a heading starts with #s and a space: %q", heading)
	lines := strings.Split(doc, "\n")
	inFence := false
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, heading) {
			continue
		}
		var body []string
		for _, next := range lines[i+1:] {
			if strings.HasPrefix(next, "```") {
				inFence = !inFence
			}
			if !inFence && strings.HasPrefix(next, "#") {
				if l := strings.Index(next, " "); l > 0 && l <= level && strings.Trim(next[:l], "#") == "" {
					break
				}
			}
			body = append(body, next)
		}
		return strings.Join(body, "\n")
	}
	t.Fatalf("no heading %q", heading)
	return ""
}

// mdTables returns the rows of every table in text (header and separator rows left out), each
// row as its trimmed cells.
func mdTables(text string) [][][]string {
	var tables [][][]string
	var rows [][]string
	flush := func() {
		if len(rows) > 2 {
			tables = append(tables, rows[2:])
		}
		rows = nil
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			flush()
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	flush()
	return tables
}

func unquote(cell string) string { return strings.Trim(cell, "`") }

func TestReadmeFirstScreen(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	intro := doc[:strings.Index(doc, "\n## ")]
	fence := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(intro)
	require.NotNil(t, fence, "the first screen shows the commands in a code block")
	require.Equal(t, "go run ./cmd/solvequeue demo\ngo test ./...\n", fence[1], "exactly the two commands for a fresh machine")
	require.Equal(t, 1, strings.Count(intro, "```sh"), "and no other commands before them")
}

func TestReadmeClassificationTables(t *testing.T) {
	t.Parallel()
	section := readmeSection(t, readme(t), "### Every AnySolver code")
	tables := mdTables(section)
	require.Len(t, tables, 2, "AnySolver's codes, then the transport codes")

	var seed, transport []classify.Rule
	for _, r := range classify.Default().Rules() {
		if r.ErrorID == 0 {
			transport = append(transport, r)
		} else {
			seed = append(seed, r)
		}
	}
	require.Len(t, seed, 36)

	var gotSeed []classify.Rule
	for _, row := range tables[0] {
		require.Len(t, row, 4, "errorId | errorCode | decision | note: %v", row)
		id, err := strconv.Atoi(row[0])
		require.NoError(t, err, "errorId of %v", row)
		gotSeed = append(gotSeed, classify.Rule{ErrorID: id, ErrorCode: unquote(row[1]), Decision: classify.Decision(row[2])})
	}
	var gotTransport []classify.Rule
	for _, row := range tables[1] {
		require.Len(t, row, 3, "code | decision | when: %v", row)
		require.NotEmpty(t, row[2], "say when %s happens", row[0])
		gotTransport = append(gotTransport, classify.Rule{ErrorCode: unquote(row[0]), Decision: classify.Decision(row[1])})
	}
	strip := func(rules []classify.Rule) []classify.Rule {
		out := make([]classify.Rule, len(rules))
		for i, r := range rules {
			out[i] = classify.Rule{ErrorID: r.ErrorID, ErrorCode: r.ErrorCode, Decision: r.Decision}
		}
		return out
	}
	require.Equal(t, strip(seed), gotSeed, "README's code table differs from `solvequeue policy`")
	require.Equal(t, strip(transport), gotTransport, "README's transport table differs from `solvequeue policy`")
}

func TestReadmeStates(t *testing.T) {
	t.Parallel()
	tables := mdTables(readmeSection(t, readme(t), "### States"))
	require.Len(t, tables, 1)
	var got []enqueue.State
	for _, row := range tables[0] {
		got = append(got, enqueue.State(unquote(row[0])))
	}
	want := []enqueue.State{enqueue.StatePending, enqueue.StateScheduled, enqueue.StateActive, enqueue.StateRetrying,
		enqueue.StateSolved, enqueue.StateFailed, enqueue.StateDead}
	require.Equal(t, want, got)
	for _, s := range got[4:] {
		require.True(t, s.Terminal(), "the last three are the terminal states")
	}

	decisions := mdTables(readmeSection(t, readme(t), "### Decisions"))
	require.Len(t, decisions, 1)
	var names []string
	for _, row := range decisions[0] {
		d, err := classify.ParseDecision(unquote(row[0]))
		require.NoError(t, err)
		names = append(names, string(d))
	}
	require.Equal(t, []string{"retry", "throttle", "failed", "dead"}, names)
}

// TestReadmeConfiguration checks that every flag of every command is in docs/configuration.md,
// under its command, with its environment variable and its default.
func TestReadmeConfiguration(t *testing.T) {
	t.Parallel()
	config := readmeSection(t, docPage(t, "configuration.md"), "## Flags")
	var commands []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" {
			commands = append(commands, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&Env{Getenv: func(string) string { return "" }}))
	require.GreaterOrEqual(t, len(commands), 10)
	for _, c := range commands {
		t.Run(c.CommandPath(), func(t *testing.T) {
			t.Parallel()
			tables := mdTables(readmeSection(t, config, "### `"+c.CommandPath()))
			require.Len(t, tables, 1, "one table of flags")
			rows := map[string][]string{}
			for _, row := range tables[0] {
				require.Len(t, row, 4, "flag | environment | default | what it does: %v", row)
				rows[unquote(row[0])] = row
			}
			var flags []string
			c.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Name == "help" {
					return
				}
				flags = append(flags, "--"+f.Name)
				row, ok := rows["--"+f.Name]
				require.True(t, ok, "--%s is not in docs/configuration.md", f.Name)
				wantEnv := "`" + envName(f.Name) + "`"
				if !readsEnv(f) {
					wantEnv = "(command line only)"
				}
				require.Equal(t, wantEnv, row[1], "--%s's environment variable", f.Name)
				wantDefault := "`" + f.DefValue + "`"
				if f.DefValue == "" {
					wantDefault = "–"
				}
				require.Equal(t, wantDefault, row[2], "--%s's default", f.Name)
				require.NotEmpty(t, row[3], "--%s says what it does", f.Name)
			})
			got := make([]string, 0, len(rows))
			for f := range rows {
				got = append(got, f)
			}
			sort.Strings(got)
			sort.Strings(flags)
			require.Equal(t, flags, got, "docs/configuration.md lists exactly the flags the command has")
		})
	}
}

func TestReadmeMetrics(t *testing.T) {
	t.Parallel()
	served := servedMetrics(t)
	tables := mdTables(readmeSection(t, docPage(t, "operating.md"), "## Metrics"))
	require.Len(t, tables, 1)
	documented := map[string]string{}
	for _, row := range tables[0] {
		require.Len(t, row, 4, "metric | type | labels | what: %v", row)
		documented[unquote(row[0])] = row[1]
	}
	for name, typ := range served {
		if !strings.HasPrefix(name, "solvequeue_") && !strings.HasPrefix(name, "asynq_") {
			continue
		}
		require.Contains(t, documented, name, "the worker serves %s: document it", name)
		require.Equal(t, typ, documented[name], "the type of %s", name)
	}
	for name := range documented {
		require.Contains(t, served, name, "docs/operating.md documents %s, which the worker does not serve", name)
	}
}

func TestReadmeAlerts(t *testing.T) {
	t.Parallel()
	tables := mdTables(readmeSection(t, readme(t), "### Alerts"))
	require.Len(t, tables, 1)
	var documented []string
	for _, row := range tables[0] {
		documented = append(documented, unquote(row[0]))
	}
	var defined []string
	for _, g := range asList(deployYAML(t)["prometheus/alerts.yaml"][0]["groups"]) {
		for _, r := range asList(dig(g, "rules")) {
			defined = append(defined, asString(dig(r, "alert")))
		}
	}
	require.Equal(t, defined, documented, "README's alert table and deploy/prometheus/alerts.yaml")
}

// TestReadmePerformanceComesFromTheBench checks that docs/performance.md says which command
// gives its figures and quotes the bench's own ratio keys, so a reader can reproduce each one.
func TestReadmePerformanceComesFromTheBench(t *testing.T) {
	t.Parallel()
	section := readmeSection(t, docPage(t, "performance.md"), "# Performance")
	require.Contains(t, section, "go run ./cmd/solvequeue bench --json")
	for _, key := range []string{"e2e_vs_naive", "submit_vs_sequential"} {
		require.Regexp(t, "`"+key+"` [0-9.]+ ", section, "docs/performance.md quotes %s from a run", key)
	}
}

func TestReadmeHelpers(t *testing.T) {
	t.Parallel()
	doc := "# T\n\n## A\ntext\n```sh\n## not a heading\n```\n### A.1\n| h | h |\n|---|---|\n| `x` | 1 |\n\n| h |\n|---|\n| y |\n## B\nb\n"
	a := readmeSection(t, doc, "## A")
	require.Contains(t, a, "## not a heading")
	require.Contains(t, a, "### A.1")
	require.NotContains(t, a, "\nb\n")
	tables := mdTables(readmeSection(t, doc, "### A.1"))
	require.Equal(t, [][][]string{{{"`x`", "1"}}, {{"y"}}}, tables)
}

// TestReadmeTaskTypesAsInHelp checks that every AnySolver task type a command's --help shows is
// spelled the same way somewhere in the README, so that the two never name one type two ways.
func TestReadmeTaskTypesAsInHelp(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	typeRE := regexp.MustCompile(`"type"\s*:\s*"([A-Za-z0-9]+)"|--type ([A-Za-z0-9]+)`)
	seen := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, m := range typeRE.FindAllStringSubmatch(c.Long+"\n"+c.Example, -1) {
			typ := m[1] + m[2]
			seen++
			require.Contains(t, doc, typ, "`%s --help` names task type %s, which the README never does", c.CommandPath(), typ)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&Env{Getenv: func(string) string { return "" }}))
	require.Positive(t, seen, "the help shows task types")
}

// TestReadmeRedisKeys checks docs/high-availability.md's table of the Redis keys solvequeue writes against the
// code's own key names: each is listed, with its slot (a queue's keys are the queue's).
func TestReadmeRedisKeys(t *testing.T) {
	t.Parallel()
	tables := mdTables(readmeSection(t, docPage(t, "high-availability.md"), "# Past one Redis: Sentinel and Cluster"))
	require.NotEmpty(t, tables)
	slots := map[string]string{}
	for _, row := range tables[len(tables)-1] {
		require.Len(t, row, 4, "key | slot | written by | lives: %v", row)
		for _, k := range strings.Split(row[0], ", ") {
			slots[unquote(strings.Fields(k)[0])] = row[1]
		}
	}
	const q = "<queue>"
	for key, slot := range map[string]string{
		keys.DeadLetters(q):   "the queue's",
		keys.BreakerPaused(q): "the queue's",
		keys.Budget(q):        "the queue's",
		keys.BudgetPaused(q):  "the queue's",
		keys.BudgetCosts(q):   "the queue's",
		keys.BudgetHeld(q):    "the queue's",
		keys.BodyPrefix + "{" + q + "}:<job>:<sha256>": "the queue's",
		keys.Queues:                       "single",
		keys.Breaker:                      "single",
		keys.Provider("<provider>"):       "single",
		keys.Balance:                      "single",
		keys.DeadLettersRefused:           "single",
		keys.GatewayKeyNames:              "single",
		keys.Failed(q):                    "the queue's",
		keys.GatewayTokenRead(q, "<job>"): "the queue's",
		strings.TrimSuffix(keys.Tally(q, 0), "0") + "<hour>":      "the queue's",
		strings.TrimSuffix(keys.ProviderTally(0), "0") + "<hour>": "single",
	} {
		require.Equal(t, slot, slots[key], "docs/high-availability.md's key table lists %s", key)
	}
}
