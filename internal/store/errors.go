// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package store

import (
	"errors"
	"fmt"

	"github.com/svcreg/svcreg/internal/validation"
)

// Domain errors. The server converts them to gRPC status codes in one place;
// validation failures are validation.ErrorList values instead.
var (
	// ErrNotFound: the object does not exist (NOT_FOUND, 404).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name is taken (ALREADY_EXISTS, 409).
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a precondition (etag, resource version) failed
	// (ABORTED, 409).
	ErrConflict = errors.New("conflict")
	// ErrRangeFull: no cluster IP or node port is left (RESOURCE_EXHAUSTED).
	ErrRangeFull = errors.New("range is full")
	// ErrFailedPrecondition: the write is not possible in the object's
	// current state (FAILED_PRECONDITION, 400).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrNotOwner: the write may change only its own instances (a
	// registrar's), and this one is another's (PERMISSION_DENIED).
	ErrNotOwner = errors.New("not the owner")
	// ErrInvalidSnapshot: a snapshot to restore is not one, is damaged, or
	// holds objects a write would refuse (INVALID_ARGUMENT).
	ErrInvalidSnapshot = errors.New("invalid snapshot")
)

// Error is a domain error with a Kubernetes-style message; errors.Is matches
// its Kind against the sentinels above.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

func notFound(resource, namespace, name string) error {
	return &Error{ErrNotFound, fmt.Sprintf("%s %q not found in namespace %q", resource, name, namespace)}
}

func alreadyExists(resource, namespace, name string) error {
	return &Error{ErrAlreadyExists, fmt.Sprintf("%s %q already exists in namespace %q", resource, name, namespace)}
}

// conflict uses Kubernetes' optimistic-concurrency message.
func conflict(resource, namespace, name string) error {
	return &Error{ErrConflict, fmt.Sprintf("operation cannot be fulfilled on %s %q in namespace %q: the object has been modified; please apply your changes to the latest version and try again", resource, name, namespace)}
}

// Required reports required fields that a request left empty.
func Required(fields ...string) error {
	var errs validation.ErrorList
	for _, f := range fields {
		errs = append(errs, validation.Required(validation.Path(f), ""))
	}
	return errs
}
