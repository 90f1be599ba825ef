package classify

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Bounds of a Policy's settings, which New and a policy file stay within.
const (
	// BaseDelayMin is the shortest first retry delay, and the shortest cap of the retry delay.
	BaseDelayMin = 100 * time.Millisecond
	// BaseDelayMax is the longest first retry delay.
	BaseDelayMax = time.Minute
	// MaxDelayMax is the longest cap of the retry delay.
	MaxDelayMax = 24 * time.Hour
	// MinWaitMin is the shortest least wait of a throttle, and the shortest cap of its wait.
	MinWaitMin = time.Second
	// MinWaitMax is the longest least wait of a throttle.
	MinWaitMax = 10 * time.Minute
	// MaxWaitMax is the longest cap of a throttle's wait.
	MaxWaitMax = time.Hour
)

// Settings are what a Policy changes of Default(). A zero field keeps the default.
type Settings struct {
	// Name names the policy in Name and in the reasons of the codes it changes. Defaults to
	// "default".
	Name string
	// MaxRetries is the retry decision's budget, 1 to MaxRetriesLimit. Defaults to
	// MaxRetriesDefault.
	MaxRetries int
	// BaseDelay is the first retry's delay before jitter, BaseDelayMin to BaseDelayMax.
	// Defaults to BaseDelayDefault.
	BaseDelay time.Duration
	// MaxDelay caps the retry delay, BaseDelay to MaxDelayMax. Defaults to MaxDelayDefault.
	MaxDelay time.Duration
	// MinWait is a throttle's least wait, MinWaitMin to MinWaitMax. Defaults to MinWaitDefault.
	MinWait time.Duration
	// MaxWait caps a throttle's wait, MinWait to MaxWaitMax. Defaults to MaxWaitDefault.
	MaxWait time.Duration
	// Codes override the table, one rule per code (see CheckCode). A rule's ErrorID of 0 takes
	// the table's; an empty Reason takes the table's when the decision is the table's, and
	// otherwise says the policy set it. Defaults to none.
	Codes []Rule
}

// New returns Default() with s's changes, or an error naming the first setting out of bounds.
func New(s Settings) (*Policy, error) {
	p := Default()
	if s.Name != "" {
		p.name = s.Name
	}
	if s.MaxRetries != 0 {
		if s.MaxRetries < 1 || s.MaxRetries > MaxRetriesLimit {
			return nil, fmt.Errorf("MaxRetries must be between 1 and %d, got %d", MaxRetriesLimit, s.MaxRetries)
		}
		p.maxRetries = s.MaxRetries
	}
	for _, d := range []struct {
		name   string
		v      time.Duration
		lo, hi time.Duration
		into   *time.Duration
	}{
		{"BaseDelay", s.BaseDelay, BaseDelayMin, BaseDelayMax, &p.baseDelay},
		{"MaxDelay", s.MaxDelay, BaseDelayMin, MaxDelayMax, &p.maxDelay},
		{"MinWait", s.MinWait, MinWaitMin, MinWaitMax, &p.minWait},
		{"MaxWait", s.MaxWait, MinWaitMin, MaxWaitMax, &p.maxWait},
	} {
		if d.v == 0 {
			continue
		}
		if d.v < d.lo || d.v > d.hi {
			return nil, fmt.Errorf("%s must be between %v and %v, got %v", d.name, d.lo, d.hi, d.v)
		}
		*d.into = d.v
	}
	if p.maxDelay < p.baseDelay {
		return nil, fmt.Errorf("MaxDelay (%v) must be at least BaseDelay (%v)", p.maxDelay, p.baseDelay)
	}
	if p.maxWait < p.minWait {
		return nil, fmt.Errorf("MaxWait (%v) must be at least MinWait (%v)", p.maxWait, p.minWait)
	}
	for _, r := range s.Codes {
		if err := p.add(r); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// add sets one code's rule, filling its errorId and reason from the table.
func (p *Policy) add(r Rule) error {
	code := r.ErrorCode
	if err := CheckCode(code, r.Custom); err != nil {
		return err
	}
	if _, dup := p.codes[code]; dup {
		return fmt.Errorf("code %q is set twice", code)
	}
	d, err := ParseDecision(string(r.Decision))
	if err != nil {
		return fmt.Errorf("code %q: %w", code, err)
	}
	r.Decision = d
	base, known := builtin[code]
	switch {
	case known && base.ErrorID == 0 && r.ErrorID != 0:
		return fmt.Errorf("code %q is synthesized for transport failures and has no errorId (leave it out or use 0)", code)
	case known && r.ErrorID != 0 && r.ErrorID != base.ErrorID:
		return fmt.Errorf("code %q has errorId %d in AnySolver's table, not %d (leave it out)", code, base.ErrorID, r.ErrorID)
	case known:
		r.ErrorID = base.ErrorID
	case r.ErrorID < 0 || r.ErrorID > 2:
		return fmt.Errorf("code %q: errorId: want 1 or 2, got %d", code, r.ErrorID)
	}
	r.Reason = strings.TrimSpace(r.Reason)
	if r.Reason == "" {
		if known && d == base.Decision {
			r.Reason = base.Reason
		} else {
			r.Reason = fmt.Sprintf("Policy %s sets this code to %s.", p.name, d)
		}
	}
	if p.codes == nil {
		p.codes = map[string]Rule{}
	}
	p.codes[code] = r
	return nil
}

// codePattern is an UPPER_SNAKE code such as CAPTCHA_UNSOLVABLE or HTTP_4XX.
var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

const maxCodeLen = 64

// CheckCode reports whether a policy may set code. A known code (AnySolver's 36, the transport
// codes, OwnCodes) may be set as it is; any other UPPER_SNAKE code only when marked custom, so
// that a typo (CAPCHA_UNSOLVABLE) is refused with the nearest known code instead of becoming a
// new code that no answer ever carries. A known code marked custom is refused too.
func CheckCode(code string, custom bool) error {
	if len(code) > maxCodeLen || !codePattern.MatchString(code) {
		return fmt.Errorf("code %q: want an UPPER_SNAKE code such as CAPTCHA_UNSOLVABLE", code)
	}
	known := knownCode(code)
	switch {
	case known && custom:
		return fmt.Errorf("code %q is a known code, not a custom one (leave custom out)", code)
	case known || custom:
		return nil
	}
	const mark = "a code of your own needs custom: true, as in {decision: retry, custom: true}"
	if near := nearestCode(code); near != "" {
		return fmt.Errorf("code %q is not a known code: did you mean %s? (%s)", code, near, mark)
	}
	return fmt.Errorf("code %q is not one of AnySolver's, the transport codes or solvequeue's own; %s", code, mark)
}

// knownCode reports whether code is in the table or one of OwnCodes.
func knownCode(code string) bool {
	if _, ok := builtin[code]; ok {
		return true
	}
	for _, c := range OwnCodes() {
		if c == code {
			return true
		}
	}
	return false
}

// nearestCode returns the known code fewest edits away from code, when it is close enough to be
// a typo of it (at most a third of code's length, and at least 1, edits away); "" otherwise.
// Ties go to the code first in the table's order.
func nearestCode(code string) string {
	best, bestDist := "", max(1, len(code)/3)+1
	try := func(c string) {
		if d := editDistance(code, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	for _, s := range seedTable {
		try(s.code)
	}
	for _, s := range synthTable {
		try(s.code)
	}
	for _, c := range OwnCodes() {
		try(c)
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes (codes are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
