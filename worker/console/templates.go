package console

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// pageNames are the templates under templates/, each rendered inside layout.html.
var pageNames = []string{"overview", "job", "list", "confirm", "done", "error"}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"path": func(p string) string { return Path + p },
	"list": listLink,
	"jobLink": func(queue, id string) string {
		return Path + "/job?" + url.Values{"id": {id}, "queue": {queue}}.Encode()
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"ago":        ago,
	"after":      func(a, b time.Time) bool { return a.After(b) },
	"dur":        dur,
	"money":      func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) },
	"micros":     func(m int64) string { return strconv.FormatFloat(float64(m)/1e6, 'f', 4, 64) },
	"window":     func(i int) string { return windowName(windows[i]) },
	"orDash":     orDash,
	"join":       strings.Join,
	"lower":      strings.ToLower,
	"title":      func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"stateLabel": stateLabel,
	"short":      short,
	"errorsKept": func() int { return jobwire.ErrorsKept },
	"inflight": func(nav string) bool {
		return nav == inFlight || nav == "retrying" || nav == "scheduled" || nav == "pending" || nav == "active"
	},
	"hasBudget": func(rows []queueRow) bool {
		for _, r := range rows {
			if r.Budget != nil {
				return true
			}
		}
		return false
	},
	"redactJSON": func(raw []byte) string { return indent(redact.JSON(raw)) },
}

// listLink is the address of a list page.
func listLink(state, queue, code string) string {
	v := url.Values{"state": {state}}
	if queue != "" {
		v.Set("queue", queue)
	}
	if code != "" {
		v.Set("code", code)
	}
	return Path + "/jobs?" + v.Encode()
}

// ago says how long before (or after) now t is, roughly.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := now.Sub(t)
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, " from now"
	}
	return dur(d) + suffix
}

// dur writes a duration roughly: 45 s, 12 min, 3 h 5 min, 2 d 4 h.
func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 24*time.Hour:
		return twoUnits(int(d/time.Hour), "h", int(d%time.Hour/time.Minute), "min")
	default:
		return twoUnits(int(d/(24*time.Hour)), "d", int(d%(24*time.Hour)/time.Hour), "h")
	}
}

func twoUnits(a int, aUnit string, b int, bUnit string) string {
	if b == 0 {
		return fmt.Sprintf("%d %s", a, aUnit)
	}
	return fmt.Sprintf("%d %s %d %s", a, aUnit, b, bUnit)
}

// short cuts s to at most n runes.
func short(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func itoa(n int) string { return strconv.Itoa(n) }
