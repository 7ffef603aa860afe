package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rackstack/rackstack/fabric/client"
)

// followEvery is how often `rackctl events --follow` asks for new events.
const followEvery = 2 * time.Second

// eventsCommand is `rackctl events [--resource ID] [--follow]`.
func eventsCommand(ctx context.Context, connect func() (*client.Client, error), emit func(any, func(io.Writer)) error, output *string, stdout io.Writer) *cobra.Command {
	var resource string
	var follow bool
	var limit int
	cmd := &cobra.Command{
		Use: "events", Short: "State changes of resources: when, what, who asked (user, request id) and why; --follow waits for more", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			evs, err := c.Events(ctx, client.EventFilter{Resource: resource, Limit: limit})
			if err != nil {
				return err
			}
			if !follow {
				return emit(map[string]any{"events": evs}, func(w io.Writer) { printEvents(w, evs, true) })
			}
			// Following outlives the one-minute bound of other commands;
			// Ctrl-C ends it.
			fctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			header := true
			var since time.Time
			seen := map[string]bool{}
			for {
				var fresh []client.Event
				for _, e := range evs {
					if !seen[e.ID] {
						seen[e.ID] = true
						fresh = append(fresh, e)
					}
					if e.Time.After(since) {
						since = e.Time
					}
				}
				if len(fresh) > 0 || header {
					if err := printFollowed(stdout, fresh, *output == "json", header); err != nil {
						return err
					}
					header = false
				}
				select {
				case <-fctx.Done():
					return nil
				case <-time.After(followEvery):
				}
				// Events of the same instant as the last one seen may
				// still come: ask from a little before it, and drop the
				// ones already printed.
				from := since.Add(-time.Second)
				if since.IsZero() {
					from = time.Time{}
				}
				if evs, err = c.Events(fctx, client.EventFilter{Resource: resource, Since: from}); err != nil {
					if fctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
	cmd.Flags().StringVar(&resource, "resource", "", "only the events of this resource (the id of a server, volume, snapshot, backup, network, subnet, port, router, floating IP, image or bare-metal node, or PROJECT/NAME of a container)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many, the newest (default: the server's, 1000)")
	return cmd
}

// printFollowed prints followed events as they come: table rows, or one
// JSON object per line.
func printFollowed(w io.Writer, evs []client.Event, jsonOut, header bool) error {
	if !jsonOut {
		printEvents(w, evs, header)
		return nil
	}
	enc := json.NewEncoder(w)
	for _, e := range evs {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

func printEvents(w io.Writer, evs []client.Event, header bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "TIME\tTYPE\tRESOURCE\tACTION\tSTATE\tUSER\tREQUEST\tREASON")
	}
	for _, e := range evs {
		state := e.To
		if e.From != "" && e.From != e.To {
			state = e.From + " → " + e.To
		}
		user := e.UserID
		if user == "" {
			user = "(system)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.RFC3339), e.ResourceType, e.ResourceID, e.Action,
			state, user, e.RequestID, strings.ReplaceAll(e.Reason, "\n", " "))
	}
	tw.Flush()
}

// escapeByte is Ctrl-], which ends `rackctl console` (as telnet's and
// virsh console's escape does).
const escapeByte = 0x1d

// consoleCommand is `rackctl console SERVER`: the guest's serial console
// in this terminal.
func consoleCommand(ctx context.Context, connect func() (*client.Client, error), stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use: "console SERVER", Short: "Attach this terminal to a server's serial console (Ctrl-] quits)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			id, err := c.ServerID(ctx, args[0])
			if err != nil {
				return err
			}
			u, err := c.SerialConsoleURL(ctx, id)
			if err != nil {
				return err
			}
			ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"binary"}})
			if err != nil {
				return fmt.Errorf("connect to the serial console of %s: %w", id, err)
			}
			defer ws.CloseNow()
			if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				old, err := term.MakeRaw(int(f.Fd()))
				if err != nil {
					return fmt.Errorf("set the terminal raw: %w", err)
				}
				// Restored however the session ends, and before the
				// closing line, so it starts at the left margin.
				defer term.Restore(int(f.Fd()), old)
			}
			fmt.Fprintf(stderr, "Connected to the serial console of %s. Escape character is '^]'.\r\n", id)
			err = attach(context.Background(), ws, stdin, stdout)
			fmt.Fprintf(stderr, "\r\nDisconnected from %s.\r\n", id)
			return err
		},
	}
}

// attach copies the console to out and in to the console until in sends
// the escape byte or ends, or the console closes.
func attach(ctx context.Context, ws *websocket.Conn, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fromGuest := make(chan error, 1)
	go func() {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				fromGuest <- err
				return
			}
			if _, err := out.Write(b); err != nil {
				fromGuest <- err
				return
			}
		}
	}()
	fromUser := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := in.Read(buf)
			chunk := buf[:n]
			quit := false
			if i := bytes.IndexByte(chunk, escapeByte); i >= 0 {
				chunk, quit = chunk[:i], true
			}
			if len(chunk) > 0 {
				if werr := ws.Write(ctx, websocket.MessageBinary, chunk); werr != nil {
					fromUser <- werr
					return
				}
			}
			if quit || err != nil {
				fromUser <- nil
				return
			}
		}
	}()
	select {
	case err := <-fromGuest:
		if websocket.CloseStatus(err) == websocket.StatusNormalClosure || errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("serial console: %w", err)
	case err := <-fromUser:
		ws.Close(websocket.StatusNormalClosure, "")
		return err
	}
}
