package workerpool_test

import "runtime"

func runtimeGoexit() { runtime.Goexit() }
