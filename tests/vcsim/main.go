// Command vcsim runs govmomi's vCenter simulator for the backup gateway's tests.
//
// It is built from Debian's govmomi in GOPATH mode (no module download):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim ./tests/vcsim
//
// Once the simulator listens it prints one line, VCSIM_URL=https://HOST:PORT/sdk,
// and serves SOAP (/sdk) and the legacy REST tagging API (/rest) until SIGTERM or SIGINT.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the /rest tagging endpoints
)

func main() {
	model := simulator.VPX()
	flag.IntVar(&model.Datacenter, "dc", model.Datacenter, "datacenters")
	flag.IntVar(&model.Cluster, "cluster", model.Cluster, "clusters per datacenter")
	flag.IntVar(&model.Host, "host", model.Host, "standalone hosts per datacenter")
	flag.IntVar(&model.ClusterHost, "cluster-host", model.ClusterHost, "hosts per cluster")
	flag.IntVar(&model.Machine, "vm", model.Machine, "VMs per resource pool")
	flag.IntVar(&model.Folder, "folder", model.Folder, "datacenters placed inside a folder")
	flag.IntVar(&model.Pool, "pool", model.Pool, "extra resource pools per cluster")
	flag.IntVar(&model.Datastore, "ds", model.Datastore, "datastores")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := flag.String("tls-cert", "", "PEM certificate served over TLS (required)")
	keyFile := flag.String("tls-key", "", "PEM private key of -tls-cert (required)")
	username := flag.String("username", "user", "the only user name accepted by SOAP Login")
	password := flag.String("password", "pass", "the password of -username")
	idle := flag.Duration("session-idle-timeout", 0, "expire idle sessions after this long (0: never)")
	watchStdin := flag.Bool("exit-on-stdin-eof", false, "shut down when stdin closes (the parent test process died)")
	flag.Parse()
	log.SetPrefix("vcsim: ")

	if *certFile == "" || *keyFile == "" {
		log.Fatal("-tls-cert and -tls-key are required (the built-in 1024-bit key is refused by modern TLS clients)")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("loading TLS certificate: %v", err)
	}
	simulator.SessionIdleTimeout = *idle

	if err := model.Create(); err != nil {
		log.Fatalf("creating inventory: %v", err)
	}
	defer model.Remove()

	model.Service.RegisterEndpoints = true
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	server := model.Service.NewServer()
	defer server.Close()

	u := *server.URL
	u.User = nil
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "VCSIM_URL=%s\n", u.String())
	if err := out.Flush(); err != nil {
		log.Fatalf("writing URL: %v", err)
	}

	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if *watchStdin {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop <- syscall.SIGHUP }()
	}
	sig := <-stop
	log.Printf("received %v, shutting down", sig)
	go func() { time.Sleep(5 * time.Second); os.Exit(0) }() // bounded close even with hung clients
}
