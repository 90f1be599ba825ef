package gateway

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// cgnat is the shared address space (RFC 6598) that carriers and clouds use inside their networks.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// nat64 are the NAT64 prefixes (RFC 6052's well-known 64:ff9b::/96 and RFC 8215's local-use
// 64:ff9b:1::/48) whose last 32 bits are an IPv4 address that a NAT64 gateway connects to.
var nat64 = []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48")}

// ForbiddenCallbackAddr reports whether a callback may not be delivered to addr unless private
// addresses are allowed: loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
// where clouds serve instance credentials, and fe80::/10), shared (100.64.0.0/10), unspecified
// and multicast addresses, IPv4 ones also in their IPv6-mapped form and inside a NAT64 prefix.
// The worker checks it on the address it is about to connect to, so a name that resolves
// elsewhere later cannot slip by.
func ForbiddenCallbackAddr(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range nat64 {
		if p.Contains(addr) {
			b := addr.As16()
			if ForbiddenCallbackAddr(netip.AddrFrom4([4]byte(b[12:]))) {
				return true
			}
		}
	}
	return !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() ||
		addr.IsUnspecified() || cgnat.Contains(addr)
}

// HostAddr returns the address a URL's host (as url.URL.Hostname gives it) denotes when it is
// written as an address rather than a name, reading it as the C resolver's inet_aton does, which
// an HTTP client on a system resolver hands such a host to: IPv6 with any embedded IPv4, and
// IPv4 as one to four parts (a.b.c.d, a.b.c with c 16 bits, a.b with b 24 bits, or one 32-bit
// number), each part decimal, octal (a leading 0) or hexadecimal (0x). So 2130706433,
// 0x7f.0.0.1, 0177.0.0.1 and 127.1 are all 127.0.0.1. A trailing dot is ignored.
func HostAddr(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr, true
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, ok := inetAtonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	last := len(nums) - 1
	var v uint64
	for i, n := range nums[:last] {
		if n > 0xff {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	if nums[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	v |= nums[last]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// inetAtonPart reads one part of an inet_aton address: decimal, octal after a leading 0, or
// hexadecimal after 0x.
func inetAtonPart(p string) (uint64, bool) {
	base := 10
	switch {
	case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
		base, p = 16, p[2:]
	case p == "0x" || p == "0X":
		return 0, true // inet_aton reads a bare 0x as 0
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	if p == "" || p[0] == '+' || p[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(p, base, 32)
	return n, err == nil
}

// checkCallbackTarget refuses at createTask a callbackUrl whose host is written as a forbidden
// address, in any form a resolver reads as one (HostAddr), or is "localhost". A host name is
// judged by the worker when it delivers, on the address the name then resolves to: looking it up
// here would cost every createTask a DNS query and prove nothing about later.
func checkCallbackTarget(raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // enqueue's validation already refused it
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return badRequest(CodeInvalidTaskData, "callbackUrl: %s is this machine; callbacks go to public addresses only (--callback-allow-private allows others)", host)
	}
	if addr, ok := HostAddr(host); ok && ForbiddenCallbackAddr(addr) {
		return badRequest(CodeInvalidTaskData, "callbackUrl: %s is a loopback, private or link-local address (%s); "+
			"callbacks go to public addresses only (--callback-allow-private allows others)", host, addr.Unmap())
	}
	return nil
}
