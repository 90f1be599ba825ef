// Package redact holds the one marker that stands in for a secret wherever solvequeue shows or
// logs text: a job's proxy password (package enqueue), the AnySolver API key echoed by a
// server (package worker/anysolver), a password in an error on the HTTP side. It is a leaf, so
// that the producer side and the AnySolver client share it without importing each other.
package redact

// Marker replaces a secret in text shown to people or written to logs.
const Marker = "[redacted]"
