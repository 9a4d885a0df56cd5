package rpc

import "errors"

// ErrTooManyLogs is returned by Backend.FilterLogs when more logs match than
// the caller's limit.
var ErrTooManyLogs = errors.New("too many logs")
