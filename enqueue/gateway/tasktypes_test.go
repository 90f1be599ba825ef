package gateway_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// TestClientTaskTypesValidated: the reCAPTCHA tasks capmonstercloud-client (NoCaptchaTask) and
// python-anticaptcha (NoCaptchaTaskProxyless) send are checked as enqueue checks a job: a bad one
// is answered with AnySolver's error shape and nothing reaches Redis; a good one is queued under
// the name AnySolver knows. A bad sitekey is answered in the anti-captcha dialect, AnySolver's own
// code first in errorDescription.
func TestClientTaskTypesValidated(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	ctx := context.Background()
	before, err := b.rc.Keys(ctx, "*").Result()
	require.NoError(t, err)

	tests := []struct {
		name string
		task map[string]any
		code string
		text string
	}{
		{"capmonstercloud-client's NoCaptchaTask with notaurl",
			map[string]any{"type": "NoCaptchaTask", "websiteURL": "notaurl", "websiteKey": "6Le-abc"},
			gateway.CodeInvalidWebsite, `task.websiteURL: "notaurl" must be a full http:// or https:// URL`},
		{"python-anticaptcha's NoCaptchaTaskProxyless with an empty sitekey",
			map[string]any{"type": "NoCaptchaTaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": ""},
			"ERROR_RECAPTCHA_INVALID_SITEKEY", gateway.CodeInvalidSitekey + ": task.websiteKey: is required for NoCaptchaTaskProxyless"},
		{"both wrong: the URL is named first",
			map[string]any{"type": "NoCaptchaTaskProxyless", "websiteURL": "notaurl", "websiteKey": ""},
			gateway.CodeInvalidWebsite, "task.websiteURL"},
		{"FunCaptcha without its public key",
			map[string]any{"type": "FunCaptchaTaskProxyless", "websiteURL": "https://shop.example/"},
			"ERROR_RECAPTCHA_INVALID_SITEKEY", gateway.CodeInvalidSitekey + ": task.websitePublicKey"},
		{"a type no client sends, with notaurl",
			map[string]any{"type": "SomeNewAnySolverToken", "websiteURL": "notaurl"},
			gateway.CodeInvalidWebsite, "task.websiteURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, a := b.raw(t, "createTask", create(alphaKey, tt.task))
			require.Equal(t, 200, status, "a protocol answer")
			requireError(t, a, 1, tt.code)
			require.Contains(t, a["errorDescription"], tt.text)
			require.NotContains(t, a, "taskId")
		})
	}
	requireNothingQueued(t, b)
	after, err := b.rc.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, before, after, "nothing reached Redis")

	// A good one is queued, under the name AnySolver knows.
	id := taskID(t, b.call(t, "createTask", create(alphaKey,
		map[string]any{"type": "NoCaptchaTaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": "6Le-abc"})))
	jobID, err := b.handler.JobID(ctx, "alpha", id)
	require.NoError(t, err)
	typ, err := b.client.TaskTypeIn(ctx, "alpha", jobID)
	require.NoError(t, err)
	require.Equal(t, "RecaptchaV2TaskProxyless", typ)
}
