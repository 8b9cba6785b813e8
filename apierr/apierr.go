// Package apierr is the API's error vocabulary on the wire: the contract's
// extensions.code values, the HTTP status each one answers with, and the
// GraphQL error body written for requests refused before GraphQL runs.
// Every layer that answers a client (edge, resolvers, the handler, metrics)
// uses it, so a code is spelled and mapped to a status in one place.
package apierr

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The contract's extensions.code values.
const (
	Unauthenticated    = "UNAUTHENTICATED"
	Forbidden          = "FORBIDDEN"
	NotFound           = "NOT_FOUND"
	BadUserInput       = "BAD_USER_INPUT"
	Conflict           = "CONFLICT"
	TenantNotFound     = "TENANT_NOT_FOUND"
	TenantNotReady     = "TENANT_NOT_READY"
	TenantSuspended    = "TENANT_SUSPENDED"
	TenantRequired     = "TENANT_REQUIRED"
	ParseFailed        = "GRAPHQL_PARSE_FAILED"
	ValidationFailed   = "GRAPHQL_VALIDATION_FAILED"
	PersistedNotFound  = "PERSISTED_QUERY_NOT_FOUND"
	QueryTooComplex    = "QUERY_TOO_COMPLEX"
	RateLimited        = "RATE_LIMITED"
	ServiceUnavailable = "SERVICE_UNAVAILABLE"
	TenantMoving       = "TENANT_MOVING"
	Internal           = "INTERNAL_SERVER_ERROR"
)

// Error is an error with a contract code and a message meant for clients.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when positive, is how many seconds the client should
	// wait before trying again (extensions.retryAfter).
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

// New returns an *Error with code and a formatted client message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Status returns the HTTP status a request refused with code answers with
// (500 for a code with none of its own).
func Status(code string) int {
	switch code {
	case RateLimited:
		return http.StatusTooManyRequests
	case ServiceUnavailable, TenantNotReady, TenantMoving:
		return http.StatusServiceUnavailable
	case BadUserInput, ParseFailed, ValidationFailed, QueryTooComplex:
		return http.StatusBadRequest
	case Forbidden, TenantSuspended:
		return http.StatusForbidden
	case TenantNotFound, NotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// WriteBody answers with status and the GraphQL error body
// {"errors":[{"message":msg,"extensions":{"code":code}}]}.
func WriteBody(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
	})
}
