package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// The headers of a delivery. Every delivery carries TimestampHeader and DeliveryHeader; a
// signed one also carries SignatureHeader, which covers both and the body, so that a captured
// delivery cannot be replayed as new (its timestamp ages) nor twice (its ID repeats).
const (
	// SignatureHeader carries SignaturePrefix and the hex HMAC-SHA256, under the delivery's
	// secret, of the timestamp, '.', the delivery ID, '.' and the body (Sign).
	SignatureHeader = "X-Solvequeue-Signature"
	// TimestampHeader carries when the delivery was sent, in Unix seconds: each try has its own.
	TimestampHeader = "X-Solvequeue-Timestamp"
	// DeliveryHeader carries the delivery's ID: one per outcome of a job, the same on every try
	// of it, so a receiver that has seen it drops the repeat.
	DeliveryHeader = "X-Solvequeue-Delivery"
	// SignaturePrefix names the signing scheme, so that a later one can be told apart.
	SignaturePrefix = "v1="
)

// keySecretLabel is what KeySecret signs under the shared secret, followed by the key's name.
const keySecretLabel = "solvequeue key callback "

// Sign returns the X-Solvequeue-Signature of a delivery: "v1=" and the hex HMAC-SHA256 under
// secret of timestamp (Unix seconds, in decimal), '.', deliveryID, '.' and the body. A receiver
// recomputes it over the raw body it got and the two headers, compares in constant time
// (hmac.Equal), refuses a timestamp more than a few minutes away from its clock and a delivery
// ID it has already seen.
func Sign(secret []byte, timestamp int64, deliveryID string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write([]byte(deliveryID))
	m.Write([]byte{'.'})
	m.Write(body)
	return SignaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// KeySecret returns the secret the callbacks of gateway key keyName's jobs are signed with when
// the keys file gives that key none: the hex HMAC-SHA256 under the workers' shared secret of
// "solvequeue key callback " and the name. Each tenant gets a secret of its own that says nothing
// of the shared one nor of another key's, so no tenant can check, or forge, another's deliveries;
// the operator prints it for the tenant ('solvequeue keys callback-secret NAME').
func KeySecret(shared, keyName string) string {
	m := hmac.New(sha256.New, []byte(shared))
	m.Write([]byte(keySecretLabel + keyName))
	return hex.EncodeToString(m.Sum(nil))
}

// deliveryID is the ID of the delivery of the outcome number seq, ended at finished, of job id:
// derived from all three, so that the same outcome scheduled again (a redelivered job) has the
// same ID, while a job ID used again after its first job expired never repeats an old one.
func deliveryID(id string, seq int, finished time.Time) string {
	sum := sha256.Sum256([]byte(id + "\x00" + strconv.Itoa(seq) + "\x00" + strconv.FormatInt(finished.UnixNano(), 10)))
	return hex.EncodeToString(sum[:16])
}

// secretFor returns the secret a delivery of a job of gateway key keyName ("" for a job that did
// not come through the gateway) is signed with, or nil when it goes unsigned: the key's own
// secret from the keys file, else one derived from the shared secret (KeySecret); a job of no
// key gets the shared secret.
func (c *Callbacks) secretFor(keyName string) []byte {
	if keyName == "" {
		return c.secret
	}
	if s, ok := c.keySecrets[keyName]; ok {
		return []byte(s)
	}
	if len(c.secret) == 0 {
		return nil
	}
	return []byte(KeySecret(string(c.secret), keyName))
}
