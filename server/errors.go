package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
)

// Error codes only HTTP has.
const (
	codeTooLarge    = "too_large" // body over the limit
	codeUnsupported = "unsupported_media_type"
	codeMethod      = "method_not_allowed"
	codeHeaders     = "headers_too_large"
	codeURI         = "uri_too_long"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	consent.EMALFORMED:    http.StatusBadRequest,
	consent.EINVALID:      http.StatusUnprocessableEntity,
	consent.ENOTFOUND:     http.StatusNotFound,
	consent.EUNAUTHORIZED: http.StatusUnauthorized,
	consent.EFORBIDDEN:    http.StatusForbidden,
	codeTooLarge:          http.StatusRequestEntityTooLarge,
	codeUnsupported:       http.StatusUnsupportedMediaType,
	codeMethod:            http.StatusMethodNotAllowed,
	codeHeaders:           http.StatusRequestHeaderFieldsTooLarge,
	codeURI:               http.StatusRequestURITooLong,
	consent.ERATELIMIT:    http.StatusTooManyRequests,
	consent.ECONFLICT:     http.StatusConflict,
	consent.EUNAVAILABLE:  http.StatusServiceUnavailable,
	consent.EDAMAGED:      http.StatusGone, // what was shown is gone: another body is stored under its name
	consent.EINTERNAL:     http.StatusInternalServerError,
}

// codeOfStatus maps the statuses echo itself produces back to our codes.
var codeOfStatus = map[int]string{
	http.StatusBadRequest:            consent.EMALFORMED,
	http.StatusNotFound:              consent.ENOTFOUND,
	http.StatusMethodNotAllowed:      codeMethod,
	http.StatusRequestEntityTooLarge: codeTooLarge,
	http.StatusUnsupportedMediaType:  codeUnsupported,
	http.StatusTooManyRequests:       consent.ERATELIMIT,
	http.StatusUnauthorized:          consent.EUNAUTHORIZED,
	http.StatusForbidden:             consent.EFORBIDDEN,
	http.StatusServiceUnavailable:    consent.EUNAVAILABLE,
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// handleError is echo's HTTPErrorHandler: every error becomes the JSON body
// of the API, or, for a person in the console, the same error as a page.
// Internal causes are logged, never sent.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		ce *consent.Error
		he *echo.HTTPError
		d  errorDetail
	)
	cancelled := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	switch {
	case cancelled:
		// The client went away (or timed out) while its request waited,
		// typically for its batch: nothing to report as a server fault.
		d = errorDetail{Code: consent.EUNAVAILABLE, Message: "the request was cancelled before it finished"}
	case errors.As(err, &ce) && ce.Code != consent.EINTERNAL:
		d = errorDetail{Code: ce.Code, Message: ce.Message, Field: ce.Field}
	case errors.As(err, &he):
		code, ok := codeOfStatus[he.Code]
		if !ok {
			code = consent.EINTERNAL
		}
		d = errorDetail{Code: code, Message: http.StatusText(he.Code)}
		if code == consent.EINTERNAL {
			d.Message = "internal error"
		}
	default:
		d = errorDetail{Code: consent.EINTERNAL, Message: "internal error"}
	}
	status, ok := statusOf[d.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	// A 503 of the store was logged by it, once per failed batch at most.
	if status >= 500 && !cancelled && (ce == nil || ce.Code != consent.EUNAVAILABLE) {
		s.log.Error("request failed", "route", c.Path(), "status", status, "err", err)
	}
	switch {
	case c.Request().Method == http.MethodHead:
		err = c.NoContent(status)
	case isConsolePage(c):
		err = s.render(c, status, "error", struct {
			page
			Error errorDetail
		}{s.page(c, http.StatusText(status), sessionOf(c)), d})
	default:
		err = c.JSON(status, errorBody{d})
	}
	if err != nil {
		s.log.Error("write error response", "err", err)
	}
}

// isConsolePage reports whether a person in the console made the request:
// a console route other than its export downloads, asked for by a browser.
func isConsolePage(c echo.Context) bool {
	p := c.Request().URL.Path
	return (p == "/admin" || strings.HasPrefix(p, "/admin/")) &&
		strings.Contains(c.Request().Header.Get("Accept"), "text/html")
}
