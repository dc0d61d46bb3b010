package cluster_test

// childModes are the modes a child process of this test binary can run
// (see internal/childproc).
var childModes = map[string]func(args []string) int{}
