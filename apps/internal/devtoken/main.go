// Command devtoken is the identity provider of development: it keeps an
// ES256 signing key in .run/auth (git-ignored) and prints bearer tokens the
// gateway accepts when it reads that folder's jwks.json.
//
//	devtoken -init                  create the key if there is none (make run does this)
//	devtoken customer <user-id>     a token for a customer (its user id is the subject)
//	devtoken operator [subject]     a token for an operator
//
// The token goes to standard output and nowhere else.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/identity/devkey"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devtoken:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("devtoken", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", filepath.Join(".run", "auth"), "folder of the development signing key")
	ttl := fl.Duration("ttl", time.Hour, "how long the token is valid")
	initKey := fl.Bool("init", false, "create the signing key if there is none, and print nothing else")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: devtoken [-dir .run/auth] [-ttl 1h] customer <user-id> | operator [subject] | -init")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *initKey {
		start := time.Now()
		_, created, err := devkey.LoadOrCreate(*dir)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stderr, "devtoken: created a development signing key in %s (%s)\n", *dir, time.Since(start).Round(time.Millisecond))
		} else {
			fmt.Fprintf(stderr, "devtoken: using the development signing key in %s\n", *dir)
		}
		return nil
	}
	var caller identity.Caller
	switch rest := fl.Args(); {
	case len(rest) == 2 && rest[0] == string(identity.Customer):
		caller = identity.Caller{Role: identity.Customer, Subject: rest[1]}
	case len(rest) == 1 && rest[0] == string(identity.Operator):
		caller = identity.Caller{Role: identity.Operator, Subject: "operator"}
	case len(rest) == 2 && rest[0] == string(identity.Operator):
		caller = identity.Caller{Role: identity.Operator, Subject: rest[1]}
	default:
		fl.Usage()
		return errors.New("name a customer's user id or operator")
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	key, err := devkey.Load(*dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no development signing key in %s: `make run` creates one (or run devtoken -init)", *dir)
	}
	if err != nil {
		return err
	}
	tok, err := key.Token(caller, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
