package main

import "time"

func sleepBriefly() { time.Sleep(25 * time.Millisecond) }
