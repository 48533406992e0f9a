package harness

import (
	"bytes"
	"strconv"
	"testing"
	"text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sidecars of replica k resolve an app id to replica k mod n of that
// app, in the kubernetes resolver's template language.
func TestAddressTemplateSpreadsCallersOverReplicas(t *testing.T) {
	s := &System{reps: map[string][]*App{}}
	port := 1000
	for _, name := range Apps {
		n := map[string]int{"products": 2, "gateway": 2}[name]
		for r := range max(n, 1) {
			port++
			s.reps[name] = append(s.reps[name], &App{Name: name, ID: name + "-x", Replica: r, InternalGRPCPort: port})
		}
	}
	resolve := func(k int, id string) string {
		s.callerReplica = k
		tmpl, err := template.New("t").Parse(s.addressTemplate())
		require.NoError(t, err)
		var b bytes.Buffer
		require.NoError(t, tmpl.Execute(&b, struct{ ID string }{id}))
		return b.String()
	}
	products := s.reps["products"]
	users := s.reps["users"][0]

	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(products[0].InternalGRPCPort), resolve(0, "products-x"))
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(products[1].InternalGRPCPort), resolve(1, "products-x"))
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(users.InternalGRPCPort), resolve(1, "users-x"), "one replica serves every caller")
}
