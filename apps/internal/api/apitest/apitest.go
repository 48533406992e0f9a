// Package apitest holds what the apps' unit tests share about api errors.
package apitest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// RequireCode asserts that err is an *api.Error with the given code and
// returns it.
func RequireCode(t testing.TB, err error, code api.Code) *api.Error {
	t.Helper()
	require.Error(t, err)
	var e *api.Error
	require.True(t, errors.As(err, &e), "want *api.Error %s, got %T: %v", code, err, err)
	require.Equal(t, code, e.Code, e.Message)
	return e
}
