// c2spverify checks a lienthong checkpoint with verifiers that are not lienthong's:
// golang.org/x/mod/sumdb/note (signed notes, Ed25519) and github.com/transparency-dev/formats
// (cosignature/v1 verifiers, checkpoint parsing).
//
// Usage: c2spverify LOG_VKEY N WITNESS_VKEY... < cosigned-note
// Exit 0 when the log's signature and at least N witness cosignatures verify; prints one line
// per verified signature, then the checkpoint's origin, size and root.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/transparency-dev/formats/log"
	tnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: c2spverify LOG_VKEY N WITNESS_VKEY... < note")
	}
	logVerifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail("log key: %v", err)
	}
	need, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail("N: %v", err)
	}
	verifiers := []note.Verifier{logVerifier}
	for _, vkey := range os.Args[3:] {
		v, err := tnote.NewVerifierForCosignatureV1(vkey)
		if err != nil {
			fail("witness key %q: %v", vkey, err)
		}
		verifiers = append(verifiers, v)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fail("note: %v", err)
	}
	logSigned, witnesses := false, 0
	for _, sig := range n.Sigs {
		if sig.Name == logVerifier.Name() && sig.Hash == logVerifier.KeyHash() {
			logSigned = true
			fmt.Printf("log %s\n", sig.Name)
			continue
		}
		t, err := tnote.CoSigV1Timestamp(sig)
		if err != nil {
			fail("cosignature of %s: %v", sig.Name, err)
		}
		witnesses++
		fmt.Printf("witness %s %d\n", sig.Name, t.Unix())
	}
	if !logSigned {
		fail("the log's signature is not among the verified ones")
	}
	if witnesses < need {
		fail("%d witness cosignatures verified, %d required", witnesses, need)
	}
	cp, _, _, err := log.ParseCheckpoint(msg, logVerifier.Name(), logVerifier)
	if err != nil {
		fail("checkpoint: %v", err)
	}
	fmt.Printf("checkpoint %s %d %x\n", cp.Origin, cp.Size, cp.Hash)
}
