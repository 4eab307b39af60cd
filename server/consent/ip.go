package consent

import "net/netip"

// TruncateIP keeps the network part of an address: /24 for IPv4 and /48 for
// IPv6, so no full address is ever stored or logged. An unparsable address
// gives "".
func TruncateIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
