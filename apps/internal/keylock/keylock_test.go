package keylock_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/keylock"
)

func TestLockSerialisesOneKeyAndForgetsIt(t *testing.T) {
	var m keylock.Mutex
	inside, most := 0, 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			unlock := m.Lock("k")
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			for range 100 { // give the others a chance to get in
				runtime.Gosched()
			}
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()

	assert.Equal(t, 1, most, "one holder at a time")
	assert.Zero(t, m.Len(), "no lock kept for a key nobody waits for")
}

func TestLockKeysAreIndependent(t *testing.T) {
	var m keylock.Mutex
	unlockA := m.Lock("a")
	unlockB := m.Lock("b") // would deadlock if keys shared a lock
	unlockB()
	unlockA()
}

func TestTryLockTakesOnlyAFreeKey(t *testing.T) {
	var m keylock.Mutex
	unlock, ok := m.TryLock("a")
	require.True(t, ok, "a free key")

	_, again := m.TryLock("a")
	assert.False(t, again, "a held key")
	other, ok := m.TryLock("b")
	require.True(t, ok, "another key")
	other()

	waited := make(chan struct{})
	go func() {
		release := m.Lock("a") // queues behind the TryLock
		close(waited)
		release()
	}()
	unlock()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Lock still waits after the TryLock's unlock")
	}
	require.Eventually(t, func() bool { return m.Len() == 0 }, 5*time.Second, time.Millisecond, "every key forgotten")
}
