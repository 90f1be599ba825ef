package gateway

// TwoCaptchaTask exposes twoCaptchaTask to the package's external tests.
var TwoCaptchaTask = twoCaptchaTask

// PastDeadline exposes pastDeadline to the package's external tests.
var PastDeadline = pastDeadline
