// Command posthog-go-client drives the real posthog-go SDK against edgehog
// for the integration tests (make deps builds it into build/sdk-go).
//
//	posthog-go-client capture <host> <token> <distinct id prefix> <count>
//	posthog-go-client flags <host> <token> <distinct id> <person properties json> <key>...
//
// capture sends <count> events through the SDK's /batch/ path; flags prints,
// as one JSON line, what the SDK's remote evaluation (/flags) returned.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/posthog/posthog-go"
)

type failures struct {
	n int
}

// Callback receives the SDK's delivery outcome of every message.
func (f *failures) Success(posthog.APIMessage) {}

func (f *failures) Failure(_ posthog.APIMessage, err error) {
	fmt.Fprintf(os.Stderr, "posthog-go delivery failed: %v\n", err)
	f.n++
}

func main() {
	if len(os.Args) < 6 {
		fmt.Fprintln(os.Stderr, "usage: posthog-go-client capture|flags <host> <token> ...")
		os.Exit(2)
	}

	mode, host, token := os.Args[1], os.Args[2], os.Args[3]
	fails := &failures{}

	client, err := posthog.NewWithConfig(token, posthog.Config{
		Endpoint:  host,
		Interval:  50 * time.Millisecond,
		BatchSize: 10,
		Callback:  fails,
		// the default 3 s is a production latency budget; a slow answer
		// on a busy test machine would read as "no flags", not what the
		// tests compare
		FeatureFlagRequestTimeout: 30 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	switch mode {
	case "capture":
		err = capture(client, os.Args[4], os.Args[5])
	case "flags":
		err = flags(client, os.Args[4], os.Args[5], os.Args[6:])
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}

	// Close flushes the queue, so failures is complete only after it
	client.Close()

	if err == nil && fails.n > 0 {
		err = fmt.Errorf("%d messages not delivered", fails.n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func capture(client posthog.Client, prefix, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}

	for i := 0; i < n; i++ {
		err = client.Enqueue(posthog.Capture{
			DistinctId: fmt.Sprintf("%s-%d", prefix, i),
			Event:      "go sdk event",
			Properties: posthog.NewProperties().
				Set("i", i).
				Set("nested", map[string]interface{}{"list": []interface{}{1, "two", nil}}),
		})
		if err != nil {
			return err
		}
	}

	return nil
}

func flags(client posthog.Client, distinctID, props string, keys []string) error {
	var person posthog.Properties

	if err := json.Unmarshal([]byte(props), &person); err != nil {
		return err
	}

	type answer struct {
		Value   interface{} `json:"value"`
		Payload *string     `json:"payload"`
	}

	out := struct {
		Flags map[string]answer      `json:"flags"`
		All   map[string]interface{} `json:"all"`
	}{Flags: map[string]answer{}}

	for _, key := range keys {
		q := posthog.FeatureFlagPayload{
			Key:              key,
			DistinctId:       distinctID,
			PersonProperties: person,
		}

		value, err := client.GetFeatureFlag(q)
		if err != nil {
			return err
		}

		payload, err := client.GetFeatureFlagPayload(q)
		if err != nil {
			return err
		}

		a := answer{Value: value}
		if payload != "" {
			a.Payload = &payload
		}
		out.Flags[key] = a
	}

	all, err := client.GetAllFlags(posthog.FeatureFlagPayloadNoKey{
		DistinctId:       distinctID,
		PersonProperties: person,
	})
	if err != nil {
		return err
	}
	out.All = all

	return json.NewEncoder(os.Stdout).Encode(out)
}
