package consent

import (
	"errors"
	"fmt"
)

// Error codes of the domain. The HTTP layer maps each to one status in one
// table, and adds the few that only HTTP has (a body too large, a method).
const (
	EMALFORMED    = "malformed"    // the request cannot be parsed
	EINVALID      = "invalid"      // it parses but a value is not acceptable
	ENOTFOUND     = "not_found"    // no such site, consent ID or route
	EUNAUTHORIZED = "unauthorized" // missing or wrong token
	EFORBIDDEN    = "forbidden"    // origin not allowed for the site
	ERATELIMIT    = "rate_limited" // too many, for now; retry later
	ECONFLICT     = "conflict"     // e.g. a chain that does not verify
	EUNAVAILABLE  = "unavailable"  // the store cannot write now (disk full, read-only)
	EDAMAGED      = "damaged"      // stored data fails its own check: a banner version whose body does not hash to its name
	EINTERNAL     = "internal"
)

// Error is the one error type whose code, message and field reach clients.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an *Error about one field of the request.
func FieldErrorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or EINTERNAL if it is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
