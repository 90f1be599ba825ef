// Package redact hides secrets wherever solvequeue shows or logs text: a job's proxy password
// (field or URL form), the password of a Redis or proxy URL, the AnySolver API key echoed by a
// server, a secret a provider quotes in an error. Marker stands in for each. It is a leaf, so
// that the producer side, the worker and the AnySolver client share it without importing each
// other.
package redact

// Marker replaces a secret in text shown to people or written to logs.
const Marker = "[redacted]"
