package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatchApply(t *testing.T) {
	p := patch{Find: []byte("\tbo := Backoff{\n"), Replace: []byte("\tbo := Backoff{\n\t\tStop: Stop,\n")}
	tests := []struct {
		name    string
		patch   patch
		src     string
		want    string
		wantErr string
	}{
		{name: "found once", patch: p, src: "a\n\tbo := Backoff{\n}\n", want: "a\n\tbo := Backoff{\n\t\tStop: Stop,\n}\n"},
		{name: "upstream changed", patch: p, src: "a\n\tbo := backoff.New()\n", wantErr: "upstream file changed"},
		{name: "found twice", patch: p, src: "\tbo := Backoff{\n\tbo := Backoff{\n", wantErr: "occurs 2 times"},
		{name: "changes nothing", patch: patch{Find: []byte("x\n"), Replace: []byte("x\n")}, src: "a\nx\n", wantErr: "changes nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.patch.apply([]byte(tt.src))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestReadPatch(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    patch
		wantErr string
	}{
		{
			name: "complete",
			text: "# why\nmodule example.com/m\nfile a/b.go\n--- find\n\tx := 1\n--- replace\n\tx := 2\n\ty := 3\n",
			want: patch{Module: "example.com/m", File: "a/b.go", Find: []byte("\tx := 1\n"), Replace: []byte("\tx := 2\n\ty := 3\n")},
		},
		{name: "no replace", text: "module m\nfile f\n--- find\nx\n", wantErr: "needs"},
		{name: "no module", text: "file f\n--- find\nx\n--- replace\ny\n", wantErr: "needs"},
		{name: "replace before find", text: "module m\nfile f\n--- replace\ny\n", wantErr: "must follow"},
		{name: "stray line", text: "module m\nfile f\noops\n--- find\nx\n--- replace\ny\n", wantErr: "unexpected line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.patch")
			require.NoError(t, os.WriteFile(path, []byte(tt.text), 0o644))
			got, err := readPatch(path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestPatchesParse reads every patch the toolchain build applies: a patch
// that does not parse would stop `make run` on a fresh machine.
func TestPatchesParse(t *testing.T) {
	paths, err := filepath.Glob("../patches/*.patch")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, err := readPatch(path)
			require.NoError(t, err)
			assert.NotEqual(t, string(p.Find), string(p.Replace))
		})
	}
}
