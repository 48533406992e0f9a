// Command overlay writes patched copies of files of a Go module dependency
// and what `go build` needs to read them, so dapr/toolchain/build.sh can fix a
// defect of the pinned Dapr release without vendoring or forking it: the
// module cache and the committed go.mod stay untouched, and only the patched
// package and the packages that import it are compiled again.
//
// The Go command refuses an overlay for files beneath GOMODCACHE, so the
// patched module is reached through a symbolic link to its directory in the
// module cache (<out>/mod/<module>@<version>), named by a replace directive in
// a generated copy of the go.mod (<out>/go.mod, used with -modfile); the
// overlay (<out>/overlay.json) swaps the patched files in beneath that link:
//
//	go build -modfile=<out>/go.mod -overlay=<out>/overlay.json ...
//
// A patch (dapr/toolchain/patches/*.patch) names one file of one module and
// one exact text to find in it and the text to put in its place (several
// patches may name one file; they apply in the order given, each to the text
// the ones before it left):
//
//	# why the patch exists (any number of comment lines)
//	module github.com/dapr/dapr
//	file pkg/runtime/pubsub/outbox.go
//	--- find
//	<the exact lines of the pinned release>
//	--- replace
//	<the lines that replace them>
//
// The text to find must occur exactly once in the module's own copy of the
// file and the result must differ from it; otherwise overlay fails and names
// the patch, so a new upstream release is looked at instead of silently built
// unpatched (or patched twice).
//
// Usage (from the module that pins the dependency):
//
//	go run ./dapr/toolchain/overlay -C dapr/toolchain/daprd -out .dapr/patch/daprd dapr/toolchain/patches/daprd-*.patch
//
// It prints <out>, the directory holding go.mod, go.sum and overlay.json.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "overlay:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		modDir = flag.String("C", ".", "directory of the Go module that requires the patched modules")
		out    = flag.String("out", "", "directory for the patched files and overlay.json")
	)
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		return errors.New("usage: overlay -C <module dir> -out <dir> <patch>...")
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	// Patched copies of an earlier run must not survive a patch removed since.
	if err := os.RemoveAll(outDir); err != nil {
		return err
	}
	ov := overlayFile{Replace: map[string]string{}}
	var replaces []string
	linked := map[string]bool{}
	for _, path := range flag.Args() {
		p, err := readPatch(path)
		if err != nil {
			return err
		}
		dir, version, err := moduleDir(*modDir, p.Module)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		link := filepath.Join(outDir, "mod", filepath.Base(dir))
		if !linked[link] {
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(dir, link); err != nil {
				return err
			}
			linked[link] = true
			// Relative to the module's directory, so no absolute path of
			// this machine ends up in the binary's build information.
			rel, err := relPath(*modDir, link)
			if err != nil {
				return err
			}
			replaces = append(replaces, fmt.Sprintf("replace %s %s => %s\n", p.Module, version, rel))
		}
		src := filepath.Join(link, filepath.FromSlash(p.File))
		dst := filepath.Join(outDir, "patched", filepath.Base(dir), filepath.FromSlash(p.File))
		// Several patches may change one file: each applies to the file as the
		// patches before it (in the order given) left it.
		current := src
		if _, seen := ov.Replace[src]; seen {
			current = dst
		}
		original, err := os.ReadFile(current)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		patched, err := p.apply(original)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, src, err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, patched, 0o644); err != nil {
			return err
		}
		ov.Replace[src] = dst
		fmt.Fprintf(os.Stderr, "overlay: %s applied to %s/%s\n", filepath.Base(path), filepath.Base(dir), p.File)
	}
	data, err := json.MarshalIndent(ov, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "overlay.json"), data, 0o644); err != nil {
		return err
	}
	if err := writeModFile(*modDir, outDir, replaces); err != nil {
		return err
	}
	fmt.Println(outDir)
	return nil
}

// relPath is target relative to dir, in the form a go.mod replace directive
// reads as a directory ("./x" or "../x").
func relPath(dir, target string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(abs, target)
	if err != nil {
		return "", err
	}
	rel = filepath.ToSlash(rel)
	if !strings.HasPrefix(rel, "../") {
		rel = "./" + rel
	}
	return rel, nil
}

// writeModFile writes <out>/go.mod, the module's go.mod with the replace
// directives added, and <out>/go.sum, a copy of its go.sum (-modfile reads
// the go.sum beside the go.mod it names).
func writeModFile(modDir, outDir string, replaces []string) error {
	mod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return err
	}
	mod = append(mod, "\n// Written by dapr/toolchain/overlay: the patched modules.\n"...)
	for _, r := range replaces {
		mod = append(mod, r...)
	}
	if err := os.WriteFile(filepath.Join(outDir, "go.mod"), mod, 0o644); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "go.sum"), sum, 0o644)
}

// overlayFile is the JSON `go build -overlay` reads: each file of the build
// that is to be read from another path.
type overlayFile struct {
	Replace map[string]string
}

// patch is one replacement in one file of one module.
type patch struct {
	Module, File  string
	Find, Replace []byte
}

// apply returns src with the patch's text replaced, or an error unless the
// text occurs exactly once and the result differs.
func (p patch) apply(src []byte) ([]byte, error) {
	switch n := bytes.Count(src, p.Find); n {
	case 1:
	case 0:
		return nil, errors.New("the text to find is not there: the upstream file changed; check whether the defect is still there and update or remove the patch")
	default:
		return nil, fmt.Errorf("the text to find occurs %d times, not once: make it longer so it names one place", n)
	}
	out := bytes.Replace(src, p.Find, p.Replace, 1)
	if bytes.Equal(out, src) {
		return nil, errors.New("the patch changes nothing")
	}
	return out, nil
}

// readPatch parses a patch file (see the package comment).
func readPatch(path string) (patch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return patch{}, err
	}
	var (
		p       patch
		section *[]byte
	)
	for _, line := range strings.SplitAfter(string(data), "\n") {
		bare := strings.TrimRight(line, "\n")
		switch {
		case bare == "--- find":
			section = &p.Find
		case bare == "--- replace":
			if section != &p.Find {
				return patch{}, fmt.Errorf("%s: '--- replace' must follow '--- find'", path)
			}
			section = &p.Replace
		case section != nil:
			*section = append(*section, line...)
		case bare == "" || strings.HasPrefix(bare, "#"):
		case strings.HasPrefix(bare, "module "):
			p.Module = strings.TrimSpace(strings.TrimPrefix(bare, "module "))
		case strings.HasPrefix(bare, "file "):
			p.File = strings.TrimSpace(strings.TrimPrefix(bare, "file "))
		default:
			return patch{}, fmt.Errorf("%s: unexpected line %q before '--- find'", path, bare)
		}
	}
	if p.Module == "" || p.File == "" || len(p.Find) == 0 || section != &p.Replace {
		return patch{}, fmt.Errorf("%s: a patch needs 'module', 'file', '--- find' and '--- replace'", path)
	}
	return p, nil
}

// moduleDir is where the Go command keeps the version of module that the
// module in dir requires, downloading it first if needed, and that version.
func moduleDir(dir, module string) (string, string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go mod download %s in %s: %w", module, dir, err)
	}
	var info struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, info.Version, nil
}
