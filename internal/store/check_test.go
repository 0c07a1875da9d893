package store

import (
	"errors"
	"strings"
	"testing"

	storev1 "github.com/svcreg/svcreg/gen/svcreg/store/v1"
	"github.com/svcreg/svcreg/internal/validation"
)

// TestPrepareRefusesACommandWithoutOp: a command that names no operation
// (the peer port's ApplyCommand with junk) is a field error naming "op",
// which the servers answer INVALID_ARGUMENT, never an internal error.
func TestPrepareRefusesACommandWithoutOp(t *testing.T) {
	err := Prepare(&storev1.Command{RequestId: "r1", Owner: "someone", RequireOwner: true}, DefaultLimits)
	var list validation.ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "op") {
		t.Fatalf("Prepare of a command without an op: %v (%T), want a field error naming op", err, err)
	}
}
