package jobwire

import (
	"fmt"
	"maps"
	"strings"
)

// fieldKind is how a task field is checked.
type fieldKind int

const (
	textField   fieldKind = iota // a non-empty string
	urlField                     // an absolute http:// or https:// URL
	base64Field                  // an image in base64 (a data: URL is fine)
)

// taskField is a field a task type requires.
type taskField struct {
	name string
	kind fieldKind
}

var (
	websiteURL = taskField{"websiteURL", urlField}
	websiteKey = taskField{"websiteKey", textField}
	imageBody  = taskField{"body", base64Field}
)

// taskType is one row of taskTypes: the type names a client sends for one kind of task, the
// name AnySolver is sent, and what the task must carry before it is queued.
type taskType struct {
	// names are matched in any case. contains instead matches every name holding one of its
	// words, so that AnySolver's own names and their ProxyLess forms need no row each.
	names, contains []string
	// anySolver is the type AnySolver is sent in place of the name given; "" sends the name as
	// given (AnySolver follows the createTask convention and takes its names).
	anySolver string
	require   []taskField
	// check, when set, checks what depends on the task's other fields (GeeTest's version).
	check func(task map[string]any, typ string) error
}

// taskTypes is every task type name solvequeue checks, from the clients scrapers already have:
// anti-captcha's (anticaptchaofficial, python-anticaptcha), CapMonster's
// (capmonstercloud-client), 2captcha's createTask API (api.2captcha.com) and AnySolver's own
// (ReCaptchaV2Token, PopularCaptchaToken, ...). The first row that matches a name decides. A
// name no row matches passes through for AnySolver to judge, with only the website fields it
// carries checked (see checkTask).
var taskTypes = []taskType{
	// CapMonster's and the older anti-captcha clients' names for reCAPTCHA v2, sent to AnySolver
	// under the createTask convention's current names.
	{names: []string{"NoCaptchaTask"}, anySolver: "RecaptchaV2Task", require: []taskField{websiteURL, websiteKey}},
	{names: []string{"NoCaptchaTaskProxyless"}, anySolver: "RecaptchaV2TaskProxyless", require: []taskField{websiteURL, websiteKey}},
	// reCAPTCHA v2, v3 and Enterprise, hCaptcha (AnySolver's PopularCaptcha) and Turnstile, in
	// every client's spelling: RecaptchaV2TaskProxyless, ReCaptchaV2EnterpriseTokenProxyLess,
	// HCaptchaTask, TurnstileTaskProxyless, ...
	{contains: []string{"recaptcha", "hcaptcha", "turnstile", "popularcaptcha"}, require: []taskField{websiteURL, websiteKey}},
	// Arkose Labs FunCaptcha: the site's public key has a field of its own.
	{names: []string{"FunCaptchaTask", "FunCaptchaTaskProxyless"}, require: []taskField{websiteURL, {"websitePublicKey", textField}}},
	// GeeTest v3 needs gt and challenge; v4 its captcha_id (as gt or in initParameters).
	{names: []string{"GeeTestTask", "GeeTestTaskProxyless"}, require: []taskField{websiteURL}, check: checkGeeTest},
	// Amazon AWS WAF (CapMonster's and 2captcha's name).
	{names: []string{"AmazonTask", "AmazonTaskProxyless"}, require: []taskField{websiteURL, websiteKey}},
	// anti-captcha's browser templates.
	{names: []string{"AntiGateTask"}, require: []taskField{websiteURL, {"templateName", textField}}},
	// Images: text, and 2captcha's and anti-captcha's click, grid, rotate and box tasks.
	{names: []string{"ImageToTextTask", "ImageToCoordinatesTask", "CoordinatesTask", "GridTask", "RotateTask",
		"DrawAroundTask", "BoundingBoxTask"}, require: []taskField{imageBody}},
}

// lookupTaskType returns the row of taskTypes that matches typ, in any case.
func lookupTaskType(typ string) (taskType, bool) {
	lower := strings.ToLower(typ)
	for _, t := range taskTypes {
		for _, n := range t.names {
			if strings.ToLower(n) == lower {
				return t, true
			}
		}
		for _, w := range t.contains {
			if strings.Contains(lower, w) {
				return t, true
			}
		}
	}
	return taskType{}, false
}

// checkTask checks a task against its type's row: the fields the type requires, then, for every
// type, the website fields it carries (a websiteURL must be a full http(s) URL and a site key a
// non-empty string even where the type does not require them).
func checkTask(task map[string]any, typ string) error {
	t, _ := lookupTaskType(typ)
	for _, f := range t.require {
		if err := requireField(task, f, typ); err != nil {
			return err
		}
	}
	if t.check != nil {
		if err := t.check(task, typ); err != nil {
			return err
		}
	}
	for _, f := range []taskField{websiteURL, websiteKey, {"websitePublicKey", textField}} {
		if _, present := task[f.name]; present {
			if err := requireField(task, f, typ); err != nil {
				return err
			}
		}
	}
	return nil
}

func requireField(task map[string]any, f taskField, typ string) error {
	switch f.kind {
	case urlField:
		return requireURL(task, f.name, typ)
	case base64Field:
		return requireBase64(task, f.name, typ)
	default:
		return requireString(task, f.name, typ)
	}
}

// checkGeeTest: version 4 (a number or a string) needs its captcha_id, as gt or as
// initParameters.captcha_id; any other version is v3, which needs gt and challenge.
func checkGeeTest(task map[string]any, typ string) error {
	if fmt.Sprint(task["version"]) == "4" {
		if params, ok := task["initParameters"].(map[string]any); ok {
			if id, ok := params["captcha_id"].(string); ok && strings.TrimSpace(id) != "" {
				return nil
			}
		}
		if err := requireString(task, "gt", typ); err != nil {
			return &ValidationError{"task.gt", "or task.initParameters.captcha_id is required for " + typ + " version 4"}
		}
		return nil
	}
	if err := requireString(task, "gt", typ); err != nil {
		return err
	}
	return requireString(task, "challenge", typ)
}

// AnySolverTask returns task with its type as AnySolver is sent it: task itself when the name
// stays, a copy with the new name otherwise (a caller's map is never changed).
func AnySolverTask(task map[string]any) map[string]any {
	typ, _ := task["type"].(string)
	t, ok := lookupTaskType(typ)
	if !ok || t.anySolver == "" || t.anySolver == typ {
		return task
	}
	out := maps.Clone(task)
	out["type"] = t.anySolver
	return out
}
