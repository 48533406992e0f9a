// Package keylock serialises work per key inside one process: requests of
// one replica on one product or one order queue up instead of failing each
// other's ETag checks. Across replicas the stores' ETags still decide.
package keylock

import "sync"

// Mutex is a set of mutexes, one per key in use. The zero value is ready.
type Mutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	waiters int
}

// Lock waits for key and returns the function that releases it.
func (k *Mutex) Lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.waiters++
	k.mu.Unlock()

	l.Lock()
	return k.unlocker(key, l)
}

// TryLock takes key only if nobody holds it or waits for it, without
// waiting: ok is false, and nothing is held, when someone does.
func (k *Mutex) TryLock(key string) (unlock func(), ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, inUse := k.locks[key]; inUse {
		return nil, false
	}
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := &keyLock{waiters: 1}
	l.Lock() // free: nobody else can reach l before k.mu is released
	k.locks[key] = l
	return k.unlocker(key, l), true
}

func (k *Mutex) unlocker(key string, l *keyLock) func() {
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// Len is how many keys are locked or waited for, for tests.
func (k *Mutex) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}
