package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// CSRF: the double-submit pattern. A page that shows a change sets a random token in a cookie of
// the console's own (SameSite=Strict, HttpOnly) and in its form; a change is made only when the
// form's token equals the cookie's. A page elsewhere can neither read the cookie nor make the
// browser send it along (Strict), and the browser's Sec-Fetch-Site and Origin headers are
// checked before that (http.CrossOriginProtection), so a cross-site form is refused twice.

// csrfCookie names the token's cookie.
const csrfCookie = "solvequeue_console_csrf"

// csrfField names the token's form field.
const csrfField = "csrf"

// csrfToken returns the browser's token, giving it one first if it has none.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails (Go 1.24+)
	token := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: Path + "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return token
}

// csrfValid reports whether a POST carries the token of the browser's cookie.
func csrfValid(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || len(ck.Value) < 32 {
		return false
	}
	got := r.PostFormValue(csrfField)
	return subtle.ConstantTimeCompare([]byte(got), []byte(ck.Value)) == 1
}
