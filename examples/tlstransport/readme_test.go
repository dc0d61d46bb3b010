package tlstransport_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEQuote: the README's "Writing a transport" section quotes this
// package's conformance test word for word, so the code it shows is the
// code CI compiles and runs.
func TestREADMEQuote(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("conformance_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	from, to := strings.Index(s, "func newTransport"), strings.Index(s, "// README end")
	if from < 0 || to < from {
		t.Fatal("conformance_test.go lost its quoted region (func newTransport ... // README end)")
	}
	quote := strings.TrimRight(s[from:to], "\n")
	r := string(readme)
	section := strings.Index(r, "## Writing a transport")
	if section < 0 {
		t.Fatal(`README.md has no "## Writing a transport" section`)
	}
	r = r[section:]
	open := strings.Index(r, "```go\n")
	if open < 0 {
		t.Fatal("the README's Writing a transport section has no Go block")
	}
	r = r[open+len("```go\n"):]
	block := strings.TrimRight(r[:strings.Index(r, "```")], "\n")
	if block != quote {
		t.Errorf("the README's Writing a transport block differs from conformance_test.go's quoted region; paste this:\n%s", quote)
	}
}
