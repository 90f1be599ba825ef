package redisserver

// LogName is the server's log file name, for the tests of package redisserver_test.
const LogName = logName

// FreePort is freePort, for a test that wants a fixed port.
func FreePort() (int, error) { return freePort() }
