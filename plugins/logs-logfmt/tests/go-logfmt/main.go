// Reference output of go-logfmt's decoder for tests/golden.rs (`go_logfmt_reference`).
//
// Reads logfmt lines on stdin, one record per line, and writes one JSON object per line:
// {"pairs": [[key, value-as-hex or null], ...], "error": {"pos": N, "msg": "..."} or null}.
// Values are hex so that invalid UTF-8 survives; go-logfmt gives nil for `k`, `k=` and `k=""`.
//
// Regenerate (Debian: apt-get install golang-go golang-github-go-logfmt-logfmt-dev):
//
//	cd plugins/logs-logfmt/tests
//	GO111MODULE=off GOPATH=/usr/share/gocode go run go-logfmt/main.go < fixtures/corpus.logfmt > fixtures/corpus.go-logfmt.jsonl
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"

	"github.com/go-logfmt/logfmt"
)

type syntaxError struct {
	Pos int    `json:"pos"`
	Msg string `json:"msg"`
}

type record struct {
	Pairs [][2]*string `json:"pairs"`
	Error *syntaxError `json:"error"`
}

func main() {
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for lines.Scan() {
		// A decoder per line: go-logfmt's Decoder stops for good at its first error.
		dec := logfmt.NewDecoder(bytes.NewReader(lines.Bytes()))
		r := record{Pairs: [][2]*string{}}
		if dec.ScanRecord() {
			for dec.ScanKeyval() {
				k := string(dec.Key())
				var v *string
				if dec.Value() != nil {
					h := hex.EncodeToString(dec.Value())
					v = &h
				}
				r.Pairs = append(r.Pairs, [2]*string{&k, v})
			}
		}
		if err := dec.Err(); err != nil {
			var se *logfmt.SyntaxError
			if !errors.As(err, &se) {
				panic(err)
			}
			r.Error = &syntaxError{Pos: se.Pos, Msg: se.Msg}
		}
		if err := enc.Encode(r); err != nil {
			panic(err)
		}
	}
	if err := lines.Err(); err != nil {
		panic(err)
	}
}
