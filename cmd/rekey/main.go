// Command rekey changes the partition key of an Azure Cosmos DB container
// while the application keeps running. See README.md for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, in := newInterrupts(context.Background(), os.Exit)
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go in.listen(sigs)

	cmd, err := newRootCommand().ExecuteContextC(ctx)
	code, msg := exitStatus(ctx, cmd, err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, "rekey:", msg)
	}
	if code != ExitOK {
		os.Exit(code)
	}
}
