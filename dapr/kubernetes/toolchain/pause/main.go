// Command pause is the program of the pod sandbox image: it holds a pod's
// network namespace open and does nothing until the runtime stops it. It
// replaces registry.k8s.io/pause, which this machine cannot pull.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
