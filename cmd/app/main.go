// Command app is the WhatsApp messaging backend; see `app --help`.
package main

import (
	"os"

	"app/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr))
}
