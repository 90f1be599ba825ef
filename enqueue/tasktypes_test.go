package enqueue_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

// TestTaskTypesValidated: every type name the anti-captcha, CapMonster and 2captcha clients send,
// and AnySolver's own, is checked for the fields it needs; a type no client sends passes, with
// the website fields it carries checked all the same.
func TestTaskTypesValidated(t *testing.T) {
	t.Parallel()
	const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"
	task := func(typ string, kv ...any) map[string]any {
		m := map[string]any{"type": typ}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	valid := []map[string]any{
		// reCAPTCHA, hCaptcha and Turnstile in each client's spelling.
		website("NoCaptchaTask"), website("NoCaptchaTaskProxyless"), website("nocaptchataskproxyless"),
		website("RecaptchaV2Task"), website("RecaptchaV2TaskProxyless"), website("RecaptchaV2EnterpriseTask"),
		website("RecaptchaV2EnterpriseTaskProxyless"), website("RecaptchaV3TaskProxyless"), website("RecaptchaV3EnterpriseTask"),
		website("HCaptchaTask"), website("HCaptchaTaskProxyless"), website("TurnstileTask"), website("TurnstileTaskProxyless"),
		website("ReCaptchaV2TokenProxyLess"), website("ReCaptchaV3EnterpriseToken"), website("PopularCaptchaTokenProxyLess"),
		website("AmazonTask"), website("AmazonTaskProxyless"),
		task("FunCaptchaTask", "websiteURL", "https://shop.example/", "websitePublicKey", "69A21A01-CC7B-B9C6"),
		task("FunCaptchaTaskProxyless", "websiteURL", "https://shop.example/", "websitePublicKey", "69A21A01-CC7B-B9C6"),
		task("GeeTestTaskProxyless", "websiteURL", "https://shop.example/", "gt", "81388ea1", "challenge", "2e2f0f65"),
		task("GeeTestTask", "websiteURL", "https://shop.example/", "version", json.Number("4"),
			"initParameters", map[string]any{"captcha_id": "e392e1d7"}),
		task("GeeTestTaskProxyless", "websiteURL", "https://shop.example/", "version", "4", "gt", "e392e1d7"),
		task("AntiGateTask", "websiteURL", "https://shop.example/", "templateName", "Sign-in", "variables", map[string]any{}),
		task("ImageToTextTask", "body", png), task("ImageToCoordinatesTask", "body", png), task("CoordinatesTask", "body", png),
		task("GridTask", "body", png), task("RotateTask", "body", png),
		// Types no client in the table sends pass for AnySolver to judge.
		task("AWSWafToken", "anything", true), task("MtCaptchaTaskProxyless"),
		task("SomeNewAnySolverToken", "websiteURL", "https://shop.example/", "websiteKey", "k"),
	}
	for _, tk := range valid {
		t.Run(tk["type"].(string)+" ok", func(t *testing.T) {
			t.Parallel()
			require.NoError(t, enqueue.Job{Task: tk}.Validate())
		})
	}

	refused := []struct {
		name      string
		task      map[string]any
		wantField string
		wantText  string
	}{
		// capmonstercloud-client's and python-anticaptcha's reCAPTCHA v2: checked like RecaptchaV2Task.
		{"NoCaptchaTask with notaurl", website("NoCaptchaTask", "websiteURL", "notaurl"), "task.websiteURL", `"notaurl" must be a full http:// or https:// URL`},
		{"NoCaptchaTaskProxyless with an empty sitekey", website("NoCaptchaTaskProxyless", "websiteKey", ""), "task.websiteKey", "is required for NoCaptchaTaskProxyless"},
		{"NoCaptchaTask any case without websiteURL", without(website("NOCAPTCHATASK"), "websiteURL"), "task.websiteURL", "is required for NOCAPTCHATASK"},
		{"RecaptchaV2EnterpriseTask without websiteKey", without(website("RecaptchaV2EnterpriseTask"), "websiteKey"), "task.websiteKey", ""},
		{"AmazonTaskProxyless ftp", website("AmazonTaskProxyless", "websiteURL", "ftp://shop.example/"), "task.websiteURL", ""},
		{"FunCaptchaTask without its public key", task("FunCaptchaTask", "websiteURL", "https://shop.example/"), "task.websitePublicKey", "is required for FunCaptchaTask"},
		{"FunCaptchaTaskProxyless notaurl", task("FunCaptchaTaskProxyless", "websiteURL", "notaurl", "websitePublicKey", "k"), "task.websiteURL", ""},
		{"GeeTest v3 without challenge", task("GeeTestTaskProxyless", "websiteURL", "https://shop.example/", "gt", "81388ea1"), "task.challenge", ""},
		{"GeeTest v3 without gt", task("GeeTestTask", "websiteURL", "https://shop.example/", "challenge", "c"), "task.gt", ""},
		{"GeeTest v4 without captcha_id", task("GeeTestTask", "websiteURL", "https://shop.example/", "version", 4.0), "task.gt", "initParameters.captcha_id"},
		{"GeeTest without websiteURL", task("GeeTestTask", "gt", "g", "challenge", "c"), "task.websiteURL", ""},
		{"AntiGateTask without templateName", task("AntiGateTask", "websiteURL", "https://shop.example/"), "task.templateName", ""},
		{"CoordinatesTask body not base64", task("CoordinatesTask", "body", "not base64!"), "task.body", "base64"},
		{"GridTask without body", task("GridTask"), "task.body", "is required for GridTask"},
		// A type no row knows: the website fields it carries are checked.
		{"unknown type notaurl", task("SomeNewAnySolverToken", "websiteURL", "notaurl"), "task.websiteURL", "full http:// or https:// URL"},
		{"unknown type empty websiteKey", task("AWSWafToken", "websiteURL", "https://shop.example/", "websiteKey", ""), "task.websiteKey", "non-empty string"},
		{"unknown type websitePublicKey not a string", task("SomeNewAnySolverToken", "websitePublicKey", 7), "task.websitePublicKey", ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := enqueue.Job{Task: tt.task}.Validate()
			var verr *enqueue.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.wantField, verr.Field, "%v", err)
			require.Contains(t, verr.Problem, tt.wantText)
		})
	}
}

// TestTaskTypesSentAsAnySolverKnowsThem: a job submitted under CapMonster's or anti-captcha's
// old reCAPTCHA names is queued under the createTask convention's current name, the caller's
// task left as it was; every other name is queued as given.
func TestTaskTypesSentAsAnySolverKnowsThem(t *testing.T) {
	t.Parallel()
	c, _, _ := miniClient(t)
	ctx := context.Background()
	tests := []struct{ sent, queued string }{
		{"NoCaptchaTask", "RecaptchaV2Task"},
		{"NoCaptchaTaskProxyless", "RecaptchaV2TaskProxyless"},
		{"nocaptchataskproxyless", "RecaptchaV2TaskProxyless"},
		{"RecaptchaV2TaskProxyless", "RecaptchaV2TaskProxyless"},
		{"ReCaptchaV2TokenProxyLess", "ReCaptchaV2TokenProxyLess"},
		{"HCaptchaTask", "HCaptchaTask"},
	}
	for _, tt := range tests {
		task := website(tt.sent)
		id, err := c.Submit(ctx, enqueue.Job{ID: "types-" + tt.sent, Task: task})
		require.NoError(t, err)
		typ, err := c.TaskTypeIn(ctx, enqueue.DefaultQueue, id)
		require.NoError(t, err)
		require.Equal(t, tt.queued, typ, "sent as %s", tt.sent)
		require.Equal(t, tt.sent, task["type"], "the caller's task is not changed")
	}
}
