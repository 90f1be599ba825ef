package jobwire

import (
	"strings"
	"time"
)

// tokenLives is how long a solved token is accepted by the site that asked for it, by task type:
// the one table of token lives. A type matches a row when its name holds one of the row's words,
// in any case, so every client's spelling (RecaptchaV2TaskProxyless, NoCaptchaTask,
// ReCaptchaV3EnterpriseToken, HCaptchaTask, PopularCaptchaToken, TurnstileTaskProxyless, ...)
// finds its row. The figures are the captcha vendors' own (docs/jobs.md cites each):
//
//   - reCAPTCHA v2, v3 and Enterprise: 120 s, Google's "Verifying the user's response" ("each
//     reCAPTCHA user response token is valid for two minutes");
//   - hCaptcha: 120 s, the default token expiry of hCaptcha's own SDKs (hcaptcha-android-sdk's
//     tokenExpiration, @hcaptcha/react-native-hcaptcha);
//   - Cloudflare Turnstile: 300 s, Cloudflare's "Validate the token" ("each token is valid for
//     300 seconds").
//
// A type no row matches (an image's text, GeeTest, FunCaptcha, AWS WAF, ...) has no token life
// that solvequeue knows, and its outcome carries no expiry.
var tokenLives = []struct {
	contains []string
	life     time.Duration
}{
	{[]string{"recaptcha", "nocaptcha"}, 120 * time.Second},
	{[]string{"hcaptcha", "popularcaptcha"}, 120 * time.Second},
	{[]string{"turnstile"}, 300 * time.Second},
}

// TokenLife returns how long the site accepts a token solved for a task of type typ, and false
// for a type whose solution is not a token of known life (ImageToTextTask, ...).
func TokenLife(typ string) (time.Duration, bool) {
	lower := strings.ToLower(typ)
	for _, row := range tokenLives {
		for _, w := range row.contains {
			if strings.Contains(lower, w) {
				return row.life, true
			}
		}
	}
	return 0, false
}

// TokenExpiresAt returns when a token solved at solvedAt for a task of type typ stops being
// accepted, or the zero time for a type with no token life.
func TokenExpiresAt(typ string, solvedAt time.Time) time.Time {
	life, ok := TokenLife(typ)
	if !ok || solvedAt.IsZero() {
		return time.Time{}
	}
	return solvedAt.Add(life)
}

// Expired reports whether the outcome's token had expired at now. An outcome without an
// expiry (not solved, or not a token) never has.
func (o Outcome) Expired(now time.Time) bool {
	return !o.ExpiresAt.IsZero() && !now.Before(o.ExpiresAt)
}
