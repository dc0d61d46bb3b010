package main

import (
	"os"

	"github.com/go-clusterclient/clusterclient/internal/clusterbench"
)

func main() { os.Exit(clusterbench.Main()) }
