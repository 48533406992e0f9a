package main

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUserCopies(t *testing.T) {
	c := NewUserCopies(2)
	c.Put("a", []byte(`{"id":"a"}`))
	c.Put("b", []byte(`{"id":"b"}`))
	c.Forget("a")
	c.Forget("a") // twice is harmless
	c.Forget("nobody")
	assert.Equal(t, []string{"b"}, c.order, "a forgotten id leaves the eviction order")

	// With "a" gone there is room for "c": "b" stays.
	c.Put("c", []byte(`{"id":"c"}`))
	_, ok := c.Get("b")
	assert.True(t, ok, "b is not evicted for a forgotten copy")
	_, ok = c.Get("a")
	assert.False(t, ok)

	// Past the bound, the oldest copy goes first.
	c.Put("d", []byte(`{"id":"d"}`))
	_, ok = c.Get("b")
	assert.False(t, ok)
	assert.Equal(t, []string{"c", "d"}, c.order)

	// Users read and forgotten over and over leave nothing behind.
	c = NewUserCopies(2)
	c.Put("x", []byte(`{}`))
	for i := range 1000 {
		id := "u" + strconv.Itoa(i)
		c.Put(id, []byte(`{}`))
		c.Forget(id)
	}
	assert.Equal(t, []string{"x"}, c.order)
	assert.Len(t, c.byID, 1)
}
