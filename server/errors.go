package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	consent.EMALFORMED:    http.StatusBadRequest,
	consent.EINVALID:      http.StatusUnprocessableEntity,
	consent.ENOTFOUND:     http.StatusNotFound,
	consent.EUNAUTHORIZED: http.StatusUnauthorized,
	consent.EFORBIDDEN:    http.StatusForbidden,
	consent.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	consent.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	consent.EMETHOD:       http.StatusMethodNotAllowed,
	consent.EHEADERS:      http.StatusRequestHeaderFieldsTooLarge,
	consent.EURI:          http.StatusRequestURITooLong,
	consent.ERATELIMIT:    http.StatusTooManyRequests,
	consent.ECONFLICT:     http.StatusConflict,
	consent.EUNAVAILABLE:  http.StatusServiceUnavailable,
	consent.EINTERNAL:     http.StatusInternalServerError,
}

// codeOfStatus maps the statuses echo itself produces back to our codes.
var codeOfStatus = map[int]string{
	http.StatusBadRequest:            consent.EMALFORMED,
	http.StatusNotFound:              consent.ENOTFOUND,
	http.StatusMethodNotAllowed:      consent.EMETHOD,
	http.StatusRequestEntityTooLarge: consent.ETOOLARGE,
	http.StatusUnsupportedMediaType:  consent.EUNSUPPORTED,
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
// of DESIGN.md. Internal causes are logged, never sent.
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
	case errors.As(err, &ce):
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
	if status >= 500 && !cancelled {
		s.log.Error("request failed", "route", c.Path(), "status", status, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, errorBody{d})
	}
	if err != nil {
		s.log.Error("write error response", "err", err)
	}
}
