//go:build !linux

package faulttest

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
