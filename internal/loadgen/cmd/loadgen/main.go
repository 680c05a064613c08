// Command loadgen is the load generator of .ci/bench-server.sh (package loadgen): loopback
// targets only, bounded in time and requests.
//
//	loadgen get -url URL [-H 'Name: value']... [-c 32] [-d 10s | -n N] [-warmup 2s] [-json] [-name NAME]
//	loadgen longpoll -url URL [-H ...] [-clients 1000] [-pid PID] [-metrics-url URL]
//	    [-trigger-url URL [-trigger-H ...] [-trigger-body JSON]] [-json] [-name NAME]
//
// "get" measures throughput and latency of plain GETs (the same for dpkeyring, nginx and a
// Vault KV read: give the Vault token with -H 'X-Vault-Token: ...'). "longpoll" parks N
// requests with If-None-Match and ?wait= and reports the server's RSS and how fast a change
// wakes them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: loadgen get|longpoll -url URL ... (loadgen MODE -h for the flags)")

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	mode, args := args[0], args[1:]
	fs := flag.NewFlagSet("loadgen "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var headers, triggerHeaders headerList
	target := fs.String("url", "", "loopback URL to GET")
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	name := fs.String("name", "", "label of the result (in the JSON and the text line)")
	var (
		conc     = fs.Int("c", 32, "get: concurrent clients (connections)")
		dur      = fs.Duration("d", 10*time.Second, "get: measuring duration (0: only -n)")
		n        = fs.Int("n", 0, "get: stop after this many requests (0: only -d)")
		warmup   = fs.Duration("warmup", 2*time.Second, "get: warm-up before measuring")
		timeout  = fs.Duration("timeout", 10*time.Second, "get: per-request timeout")
		clients  = fs.Int("clients", 1000, "longpoll: waiting clients")
		wait     = fs.Duration("wait", 110*time.Second, "longpoll: ?wait= of each request")
		pid      = fs.Int("pid", 0, "longpoll: server pid whose VmRSS is read")
		metrics  = fs.String("metrics-url", "", "longpoll: metrics URL polled until every client waits")
		trigger  = fs.String("trigger-url", "", "longpoll: URL POSTed to change the ring once all wait")
		tbody    = fs.String("trigger-body", "", "longpoll: JSON body of the trigger POST")
		hold     = fs.Duration("hold", 2*time.Second, "longpoll: hold time without a trigger")
		lpTimout = fs.Duration("run-timeout", 3*time.Minute, "longpoll: bound of the whole run")
	)
	fs.Var(&triggerHeaders, "trigger-H", "longpoll: header of the trigger POST (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	h, err := loadgen.ParseHeaders(headers)
	if err != nil {
		return err
	}
	var out any
	var line string
	switch mode {
	case "get":
		res, err := loadgen.Run(ctx, loadgen.Config{URL: *target, Header: h, Concurrency: *conc, Duration: *dur,
			Requests: *n, Warmup: *warmup, Timeout: *timeout})
		if err != nil {
			return err
		}
		out, line = struct {
			Name string `json:"name,omitempty"`
			loadgen.Result
		}{*name, res}, res.String()
	case "longpoll":
		th, err := loadgen.ParseHeaders(triggerHeaders)
		if err != nil {
			return err
		}
		res, err := loadgen.LongPoll(ctx, loadgen.LongPollConfig{URL: *target, Header: h, Clients: *clients, Wait: *wait,
			MetricsURL: *metrics, PID: *pid, TriggerURL: *trigger, TriggerHeader: th, TriggerBody: *tbody,
			Hold: *hold, Timeout: *lpTimout})
		if err != nil {
			return err
		}
		out, line = struct {
			Name string `json:"name,omitempty"`
			loadgen.LongPollResult
		}{*name, res}, res.String()
	default:
		return errUsage
	}
	if *asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	if *name != "" {
		line = *name + ": " + line
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}
