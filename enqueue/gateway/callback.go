package gateway

import (
	"net/netip"
	"net/url"
	"strings"
)

// cgnat is the shared address space (RFC 6598) that carriers and clouds use inside their networks.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// ForbiddenCallbackAddr reports whether a callback may not be delivered to addr unless private
// addresses are allowed: loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
// where clouds serve instance credentials, and fe80::/10), shared (100.64.0.0/10), unspecified
// and multicast addresses, IPv4 ones also in their IPv6-mapped form. The worker checks it on the
// address it is about to connect to, so a name that resolves elsewhere later cannot slip by.
func ForbiddenCallbackAddr(addr netip.Addr) bool {
	addr = addr.Unmap()
	return !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() ||
		addr.IsUnspecified() || cgnat.Contains(addr)
}

// checkCallbackTarget refuses at createTask a callbackUrl whose host is written as a forbidden
// address or is "localhost". A host name is judged by the worker when it delivers, on the
// address the name then resolves to: looking it up here would cost every createTask a DNS query
// and prove nothing about later.
func checkCallbackTarget(raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // enqueue's validation already refused it
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return badRequest(CodeInvalidTaskData, "callbackUrl: %s is this machine; callbacks go to public addresses only (--callback-allow-private allows others)", host)
	}
	if addr, err := netip.ParseAddr(host); err == nil && ForbiddenCallbackAddr(addr) {
		return badRequest(CodeInvalidTaskData, "callbackUrl: %s is a loopback, private or link-local address; "+
			"callbacks go to public addresses only (--callback-allow-private allows others)", host)
	}
	return nil
}
